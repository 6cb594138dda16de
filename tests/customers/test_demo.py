"""The demo store: its structure (pure), and ``demo_load`` against a live server."""

import base64
import datetime as dt
import gzip
import http.server
import io
import itertools
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from customers.demo import store as demo
from customers.demo.credentials import demo_credentials_ensure
from customers.demo.sender import MAX_BATCH_BYTES, DemoSendError, batches, send_messages
from customers.demo.steps import DemoRun, demo_steps
from customers.ingest.messages import normalise_phone, parse_batch, valid_time_zones
from customers.ingest.views import MAX_MESSAGE_BYTES
from customers.models import ApiKey, Customer, Event

NOW = dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.UTC)
DAYS = 60
BASE_DIR = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def store() -> demo.DemoStore:
    return demo.generate_store(customers=200, days=DAYS, seed=7, now=NOW)


def _by_segment(store: demo.DemoStore) -> dict[str, list[demo.DemoCustomer]]:
    groups: dict[str, list[demo.DemoCustomer]] = {}
    for customer in store.customers:
        groups.setdefault(customer.segment, []).append(customer)
    return groups


def _when(message: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(message["timestamp"])


def _day(message: dict) -> int:
    return int((_when(message) - (NOW - dt.timedelta(days=DAYS))).total_seconds() // 86_400)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The demo's admin gets a real password; tests need not pay for its stretching.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# -- the generator ---------------------------------------------------------------------


def test_customer_types_come_in_fixed_shares(store):
    counts = Counter(customer.segment for customer in store.customers)

    assert counts == {
        demo.LOYAL: 30,
        demo.BARGAIN_HUNTER: 50,
        demo.WINDOW_SHOPPER: 50,
        demo.CHURNING: 30,
        demo.NEW: 40,
    }


def test_every_message_falls_inside_the_window(store):
    start = NOW - dt.timedelta(days=DAYS)

    moments = [_when(message) for message in store.messages()]

    assert min(moments) >= start
    assert max(moments) < NOW


def test_churning_customers_fade_and_stop_before_the_last_weeks(store):
    quiet_since = NOW - dt.timedelta(days=demo.churn_quiet_days(DAYS))

    for customer in _by_segment(store)[demo.CHURNING]:
        moments = [_when(message) for message in customer.messages]
        assert max(moments) < quiet_since
    # The others are still around in those weeks.
    loyal_recent = [
        customer
        for customer in _by_segment(store)[demo.LOYAL]
        if any(_when(message) >= quiet_since for message in customer.messages)
    ]
    assert len(loyal_recent) >= 20


def _visit_days(customer: demo.DemoCustomer) -> list[int]:
    return sorted({_day(message) for message in customer.messages})


def test_steady_customers_are_rarely_away_for_a_month_by_chance(store):
    # A month without a visit is what the churn model predicts: for customers who keep
    # coming it must be rare, or its labels are noise (daily coin flips made it 43%).
    groups = _by_segment(store)
    steady = groups[demo.LOYAL] + groups[demo.WINDOW_SHOPPER] + groups[demo.BARGAIN_HUNTER]

    def longest_absence(customer):
        days = [*_visit_days(customer), DAYS]
        return max(later - earlier for earlier, later in itertools.pairwise(days))

    away = [customer for customer in steady if longest_absence(customer) >= 30]

    assert len(steady) == 130
    assert len(away) <= len(steady) // 6
    assert not [customer for customer in groups[demo.LOYAL] if longest_absence(customer) >= 30]


def test_churning_customers_leave_on_days_spread_over_the_history_and_fade(store):
    churning = _by_segment(store)[demo.CHURNING]
    last_days = [_visit_days(customer)[-1] for customer in churning]
    active_days = DAYS - demo.churn_quiet_days(DAYS)

    # as many leave in the older half of the history as in the newer one, so a model
    # trained on the older half sees churn too
    older = sum(day < active_days / 2 for day in last_days)
    assert len(churning) // 3 <= older <= 2 * len(churning) // 3
    # and those seen several times come less and less often
    gaps = [
        (days[1] - days[0], days[-1] - days[-2])
        for days in map(_visit_days, churning)
        if len(days) >= 3
    ]
    assert len(gaps) >= 10
    assert sum(last > first for first, last in gaps) >= 3 * len(gaps) // 4
    assert sum(last for _, last in gaps) > 1.3 * sum(first for first, _ in gaps)


def test_a_promotion_starts_every_other_week(store):
    starts = [promotion.first_day for promotion in store.promotions]

    assert len(starts) == 4
    assert {later - earlier for earlier, later in itertools.pairwise(starts)} == {15}


def test_loyal_customers_order_more_and_spend_more(store):
    groups = _by_segment(store)

    def orders(segment):
        return statistics.mean(len(c.tracks(demo.ORDER_COMPLETED)) for c in groups[segment])

    def revenue(segment):
        return statistics.mean(
            sum(m["properties"]["revenue"] for m in c.tracks(demo.ORDER_COMPLETED))
            for c in groups[segment]
        )

    assert orders(demo.LOYAL) > 2 * orders(demo.BARGAIN_HUNTER) > 0
    assert orders(demo.LOYAL) > 10 * max(orders(demo.WINDOW_SHOPPER), 0.01)
    assert revenue(demo.LOYAL) > 2 * max(revenue(s) for s in groups if s != demo.LOYAL)


def test_window_shoppers_view_much_and_rarely_buy(store):
    groups = _by_segment(store)
    shoppers = groups[demo.WINDOW_SHOPPER]

    views = sum(len(c.tracks(demo.PRODUCT_VIEWED)) for c in shoppers)
    orders = sum(len(c.tracks(demo.ORDER_COMPLETED)) for c in shoppers)

    assert views >= 20 * max(orders, 1)


def test_bargain_hunters_buy_during_promotions_with_the_coupon(store):
    hunters = _by_segment(store)[demo.BARGAIN_HUNTER]
    orders = [m for customer in hunters for m in customer.tracks(demo.ORDER_COMPLETED)]

    during = [m for m in orders if any(p.covers(_day(m)) for p in store.promotions)]

    assert len(orders) >= 15
    assert len(during) >= 0.8 * len(orders)
    assert sum(1 for m in during if m["properties"]["coupon"]) >= 0.8 * len(during)


def test_new_customers_browse_anonymously_then_sign_up(store):
    first_seen_after = NOW - dt.timedelta(days=demo.new_customer_days(DAYS))

    for customer in _by_segment(store)[demo.NEW]:
        messages = customer.messages
        assert min(_when(m) for m in messages) >= first_seen_after
        assert "userId" not in messages[0]
        assert messages[0]["anonymousId"] == customer.anonymous_id
        identify = next(m for m in messages if m["type"] == "identify")
        assert identify["userId"] == customer.user_id
        assert identify["anonymousId"] == customer.anonymous_id
        assert len(customer.tracks(demo.SIGNED_UP)) == 1
        after = messages[messages.index(identify) :]
        assert all(m["userId"] == customer.user_id for m in after)


def test_events_use_segment_ecommerce_names_and_properties(store):
    names = Counter(m["event"] for m in store.messages() if m["type"] == "track")

    assert set(names) <= demo.TRACK_EVENT_NAMES
    for name in (
        demo.PRODUCT_VIEWED, demo.PRODUCT_ADDED, demo.CART_VIEWED, demo.CHECKOUT_STARTED,
        demo.PAYMENT_INFO_ENTERED, demo.ORDER_COMPLETED, demo.COUPON_APPLIED,
        demo.PRODUCTS_SEARCHED, demo.PRODUCT_LIST_VIEWED,
    ):  # fmt: skip
        assert names[name] > 0, name
    order = next(m for m in store.messages() if m.get("event") == demo.ORDER_COMPLETED)
    properties = order["properties"]
    assert properties["order_id"].startswith("ORD-")
    assert properties["total"] == round(
        properties["revenue"] + properties["shipping"] + properties["tax"], 2
    )
    assert properties["products"] and all("product_id" in p for p in properties["products"])
    assert Counter(m["type"] for m in store.messages())["identify"] == 200


def test_identify_carries_contact_traits_and_the_ground_truth(store):
    for customer in store.customers:
        identify = next(m for m in customer.messages if m["type"] == "identify")
        traits = identify["traits"]
        assert traits["email"].rsplit("@", 1)[1] in {"example.com", "example.net", "example.org"}
        assert normalise_phone(traits["phone"]) == traits["phone"]
        assert traits["demo_segment"] == customer.segment
        assert {"firstName", "lastName", "city", "createdAt"} <= set(traits)
        assert identify["context"]["timezone"] in valid_time_zones()
        assert identify["context"]["locale"]


def test_the_ingest_accepts_every_message_within_its_limits(store):
    messages = list(store.messages())

    parsed = parse_batch({"batch": messages}, received_at=NOW)

    assert len(parsed) == len(messages)
    assert max(len(orjson.dumps(m)) for m in messages) < MAX_MESSAGE_BYTES
    groups = batches(messages)
    assert sum(len(group) for group in groups) == len(messages)
    assert all(len(group) <= 100 for group in groups)
    assert all(len(orjson.dumps({"batch": group})) < MAX_BATCH_BYTES for group in groups)


def test_same_seed_same_store_whenever_it_runs(store):
    again = demo.generate_store(customers=200, days=DAYS, seed=7, now=NOW)
    a_day_later = demo.generate_store(
        customers=200, days=DAYS, seed=7, now=NOW + dt.timedelta(days=1, hours=5)
    )
    more_customers = demo.generate_store(customers=220, days=DAYS, seed=7, now=NOW)
    other_seed = demo.generate_store(customers=200, days=DAYS, seed=8, now=NOW)

    def ids(generated):
        return [m["messageId"] for m in generated.messages()]

    assert list(again.messages()) == list(store.messages())
    assert ids(a_day_later) == ids(store)
    assert ids(more_customers)[: store.message_count] == ids(store)
    assert not set(ids(other_seed)) & set(ids(store))
    assert len(set(ids(store))) == store.message_count


def test_the_default_store_is_big_enough():
    generated = demo.generate_store(customers=2000, days=90, seed=1, now=NOW)

    assert len(generated.customers) == 2000
    assert generated.message_count >= 50_000


# -- demo_load against a live server ---------------------------------------------------


def _load(live_server, credentials: Path, **options) -> str:
    out = io.StringIO()
    call_command(
        "demo_load",
        url=live_server.url,
        credentials=str(credentials),
        no_progress=True,
        stdout=out,
        **options,
    )
    return out.getvalue()


OTHER_APPS_EVENTS = ("Segment Entered", "Segment Exited")


@pytest.fixture
def demo_step_runs():
    """A step of another app's, as later issues add theirs to the demo."""
    runs: list[DemoRun] = []

    def step(run: DemoRun) -> list[str]:
        runs.append(run)
        return [f"Extras        {len(run.store.customers)} customers seen by a step"]

    demo_steps.register("test extras", step)
    yield runs
    demo_steps.unregister("test extras")


@pytest.mark.e2e
def test_demo_load_sends_the_store_through_the_ingest_once(
    live_server, transactional_db, tmp_path, demo_step_runs
):
    credentials = tmp_path / "demo-credentials.json"
    expected = demo.generate_store(customers=8, days=20, seed=3, now=NOW)
    expected_ids = {m["messageId"] for m in expected.messages()}
    before = timezone.now()

    first = _load(live_server, credentials, customers=8, days=20, seed=3)

    stored = json.loads(credentials.read_text())
    # the store's events, stored once (the other apps' steps add only their own events,
    # such as segments' Segment Entered)
    store_events = Event.objects.exclude(name__in=OTHER_APPS_EVENTS)
    assert set(store_events.values_list("message_id", flat=True)) == expected_ids
    assert store_events.count() == expected.message_count
    assert Customer.objects.count() == 8
    assert set(Customer.objects.values_list("external_id", flat=True)) == {
        c.user_id for c in expected.customers
    }
    oldest = Event.objects.order_by("timestamp").first().timestamp
    assert before - dt.timedelta(days=20) <= oldest < before - dt.timedelta(days=5)
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(stored["admin_password"])
    assert ApiKey.objects.count() == 1
    assert stored["admin_password"] in first and stored["write_key"] in first
    assert f"{live_server.url}/api/docs/" in first
    assert f"{expected.message_count:,} stored now, 0 already there" in first
    assert "Extras        8 customers seen by a step" in first
    assert demo_step_runs[0].url == live_server.url
    assert demo_step_runs[0].credentials.write_key == stored["write_key"]

    events_after_first = Event.objects.count()
    second = _load(live_server, credentials, customers=8, days=20, seed=3)

    assert store_events.count() == expected.message_count
    assert Event.objects.count() == events_after_first
    assert Customer.objects.count() == 8
    assert ApiKey.objects.count() == 1
    assert get_user_model().objects.count() == 1
    assert stored["admin_password"] in second and stored["write_key"] in second
    assert f"0 stored now, {expected.message_count:,} already there" in second
    assert len(demo_step_runs) == 2


@pytest.mark.e2e
def test_a_failing_demo_step_fails_the_command_in_one_line(live_server, transactional_db, tmp_path):
    def broken(run):
        raise RuntimeError("no journeys today")

    real = dict(demo_steps.items()).get("journeys")
    demo_steps.register("journeys", broken)
    try:
        with pytest.raises(CommandError) as failed:
            _load(live_server, tmp_path / "c.json", customers=1, days=3, seed=5)
    finally:
        demo_steps.unregister("journeys")
        if real is not None:
            demo_steps.register("journeys", real)

    assert str(failed.value) == "the journeys part of the demo failed: no journeys today"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_load_refuses_an_unreachable_server(db, tmp_path):
    credentials = tmp_path / "demo-credentials.json"

    with pytest.raises(CommandError, match=r"cannot reach http://127\.0\.0\.1:"):
        call_command(
            "demo_load",
            url=f"http://127.0.0.1:{_closed_port()}",
            credentials=str(credentials),
            no_progress=True,
        )

    assert not credentials.exists()
    assert get_user_model().objects.count() == 0
    assert ApiKey.objects.count() == 0
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("option", "value", "reason"),
    [
        ("customers", 0, "--customers must be between 1 and 1,000,000, not 0"),
        ("days", -3, "--days must be between 1 and 3,650, not -3"),
        ("url", "127.0.0.1:8000", "--url must be an http(s) URL"),
    ],
)
def test_demo_load_refuses_bad_options(db, tmp_path, option, value, reason):
    credentials = tmp_path / "demo-credentials.json"

    with pytest.raises(CommandError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        call_command("demo_load", credentials=str(credentials), **{option: value})

    assert not credentials.exists()
    assert get_user_model().objects.count() == 0
    assert ApiKey.objects.count() == 0


def test_demo_load_from_the_shell_says_one_line_and_fails(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "demo_load", "--customers", "0",
         "--credentials", str(tmp_path / "c.json")],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, "DEBUG": "true", "PYTHONPATH": str(BASE_DIR)},
        timeout=120,
    )  # fmt: skip

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "CommandError: --customers must be between 1 and 1,000,000, not 0"
    ]


# -- the sender ------------------------------------------------------------------------


class _FlakyIngest:
    """A stand-in server that answers 503 to the first ``failures`` posts, then 200."""

    def __init__(self, failures: int = 0, hold_short_batches: threading.Event | None = None):
        self.failures = failures
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.released_in_time: list[bool] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.headers.append(dict(self.headers))
                if outer.failures:
                    outer.failures -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                payload = orjson.loads(gzip.decompress(body))
                if hold_short_batches is not None and len(payload["batch"]) < 100:
                    # Answered only once the sender has reported an earlier batch done.
                    outer.released_in_time.append(hold_short_batches.wait(timeout=10))
                outer.bodies.append(payload)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"success": true}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_sender_posts_gzipped_batches_with_basic_auth_and_retries_passing_failures(store):
    messages = list(store.messages())[:250]
    ingest = _FlakyIngest(failures=2)
    waits: list[float] = []
    try:
        sent = send_messages(
            url=ingest.url, write_key="jl_k_secret", messages=messages, sleep=waits.append
        )
    finally:
        ingest.close()

    assert sent == 250
    # Batches of 100 at most, posted on several connections: in any order.
    assert sorted(len(body["batch"]) for body in ingest.bodies) == [50, 100, 100]
    delivered = [m["messageId"] for body in ingest.bodies for m in body["batch"]]
    assert sorted(delivered) == sorted(m["messageId"] for m in messages)
    assert all("sentAt" in body for body in ingest.bodies)
    assert len(waits) == 2
    expected_auth = "Basic " + base64.b64encode(b"jl_k_secret:").decode()
    assert all(h["Authorization"] == expected_auth for h in ingest.headers)
    assert all(h["Content-Encoding"] == "gzip" for h in ingest.headers)


def test_sender_reports_progress_as_each_batch_lands(store):
    messages = list(store.messages())[:250]
    first_reported = threading.Event()
    ingest = _FlakyIngest(hold_short_batches=first_reported)
    reported: list[int] = []

    def on_sent(count: int) -> None:
        reported.append(count)
        first_reported.set()

    try:
        send_messages(url=ingest.url, write_key="jl_k_secret", messages=messages, on_sent=on_sent)
    finally:
        ingest.close()

    assert ingest.released_in_time == [True]
    assert sorted(reported) == [50, 100, 100]


@pytest.mark.e2e
def test_sender_reports_the_ingest_refusal_in_one_line(live_server, transactional_db, write_key):
    with pytest.raises(DemoSendError) as refused:
        send_messages(
            url=live_server.url,
            write_key=write_key,
            messages=[{"type": "track", "userId": "u-1", "messageId": "m-1"}],
        )

    assert str(refused.value) == (
        f"{live_server.url}/v1/batch answered 400: "
        "message 0: event is required for track and must be a non-empty string"
    )
    assert Event.objects.count() == 0

    with pytest.raises(DemoSendError, match="refused the write key"):
        send_messages(
            url=live_server.url,
            write_key="jl_unknown_key",
            messages=[{"type": "track", "userId": "u-1", "event": "Signed Up"}],
        )
    assert Event.objects.count() == 0


# -- the demo's credentials ------------------------------------------------------------


def test_credentials_are_created_once_and_kept(db, tmp_path):
    path = tmp_path / "demo-credentials.json"

    first = demo_credentials_ensure(path=path)
    second = demo_credentials_ensure(path=path)

    assert first.user_created and first.key_created
    assert not second.user_created and not second.key_created
    assert (second.password, second.write_key) == (first.password, first.write_key)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ApiKey.objects.get().scopes == ["ingest"]


def test_credentials_leave_an_admin_password_they_did_not_set(db, tmp_path):
    get_user_model().objects.create_superuser(username="admin", password="chosen-by-a-human-1")

    credentials = demo_credentials_ensure(path=tmp_path / "demo-credentials.json")

    assert credentials.password is None
    assert get_user_model().objects.get().check_password("chosen-by-a-human-1")


def test_credentials_replace_a_revoked_write_key(db, tmp_path):
    from customers.services.api_keys import api_key_revoke

    path = tmp_path / "demo-credentials.json"
    first = demo_credentials_ensure(path=path)
    api_key_revoke(api_key=ApiKey.objects.get())

    second = demo_credentials_ensure(path=path)

    assert second.key_created and second.write_key != first.write_key
    assert ApiKey.objects.filter(revoked_at=None).count() == 1
    assert json.loads(path.read_text())["write_key"] == second.write_key
