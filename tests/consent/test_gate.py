"""The pure decision: no database, no clock."""

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from consent import gate
from consent.gate import GateSettings, RecordedState, Snapshot, TopicRule, decide, explain

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
NEWS = TopicRule(key="news", channels=frozenset({"email", "sms"}))
OPT_OUT = TopicRule(key="tips", channels=frozenset({"email"}), opt_out_default=True)
DEALS = TopicRule(key="deals", channels=frozenset({"email"}), double_opt_in=True)
RECEIPTS = TopicRule(
    key="transactional", channels=frozenset({"email", "sms"}), is_transactional=True
)
NO_RULES = GateSettings()


def granted(minutes_ago=10, event_id=1):
    return RecordedState("grant", NOW - dt.timedelta(minutes=minutes_ago), event_id)


def withdrawn(minutes_ago=5, event_id=2):
    return RecordedState("withdraw", NOW - dt.timedelta(minutes=minutes_ago), event_id)


def snapshot(**changes):
    return Snapshot(customer_id=1, addresses=("a@example.com",), **changes)


def reason(snap, topic=NEWS, channel="email", rules=NO_RULES, now=NOW):
    return decide(snapshot=snap, channel=channel, topic=topic, now=now, settings=rules).reason


def test_the_reasons_in_order():
    assert reason(snapshot(topic_state=granted())) == "allowed"
    assert reason(snapshot()) == "no_consent"
    assert reason(snapshot(), topic=OPT_OUT) == "allowed"
    assert reason(snapshot(topic_state=withdrawn()), topic=OPT_OUT) == "withdrawn"
    assert reason(snapshot(topic_state=RecordedState("pending", NOW))) == "pending_confirmation"
    assert reason(Snapshot(customer_id=1, topic_state=granted())) == "unreachable"
    suppressed = snapshot(topic_state=granted(), suppressed_addresses=frozenset({"a@example.com"}))
    assert reason(suppressed) == "suppressed"
    assert reason(snapshot(topic_state=granted(), erased=True)) == "erased"
    assert reason(snapshot(topic_state=granted()), channel="push") == "no_consent"
    assert reason(snapshot(), topic=None) == "unknown_topic"


def test_unsubscribe_from_everything_wins_until_a_topic_is_granted_again():
    assert reason(snapshot(topic_state=granted(10, 1), channel_state=withdrawn(5, 2))) == (
        "withdrawn"
    )
    assert reason(snapshot(topic_state=granted(1, 3), channel_state=withdrawn(5, 2))) == "allowed"
    # START lifts the channel switch; the topic's own state applies again.
    start = RecordedState("grant", NOW, 4)
    assert reason(snapshot(topic_state=granted(10, 1), channel_state=start)) == "allowed"
    assert reason(snapshot(channel_state=start)) == "no_consent"


def test_transactional_needs_no_consent_but_respects_suppression_and_erasure():
    assert reason(snapshot(channel_state=withdrawn()), topic=RECEIPTS) == "allowed"
    suppressed = snapshot(suppressed_addresses=frozenset({"a@example.com"}))
    assert reason(suppressed, topic=RECEIPTS) == "suppressed"
    assert reason(snapshot(erased=True), topic=RECEIPTS) == "erased"


def test_one_unsuppressed_push_token_is_enough():
    snap = Snapshot(
        customer_id=1,
        addresses=("t1", "t2"),
        suppressed_addresses=frozenset({"t1"}),
        topic_state=granted(),
    )
    assert reason(snap, topic=TopicRule(key="p", channels=frozenset({"push"})), channel="push") == (
        "allowed"
    )


def test_quiet_hours_defer_to_the_end_of_the_window_in_the_customers_zone():
    rules = GateSettings(quiet_hours={"sms": (dt.time(21), dt.time(8))})
    # 23:30 in Amsterdam (UTC+1 in winter) on 10 March.
    late = dt.datetime(2026, 3, 10, 22, 30, tzinfo=dt.UTC)
    snap = snapshot(topic_state=granted(), timezone="Europe/Amsterdam")
    decision = decide(snapshot=snap, channel="sms", topic=NEWS, now=late, settings=rules)
    assert decision.reason == "quiet_hours"
    assert decision.retry_at == dt.datetime(2026, 3, 11, 7, 0, tzinfo=dt.UTC)
    # Email has no quiet hours here; an unknown zone falls back to the default.
    assert reason(snap, channel="email", rules=rules, now=late) == "allowed"
    unknown = snapshot(topic_state=granted(), timezone="Mars/Olympus")
    in_new_york = GateSettings(quiet_hours=rules.quiet_hours, default_timezone="America/New_York")
    assert reason(unknown, channel="sms", rules=in_new_york, now=late) == "allowed"  # 17:30 there


def test_frequency_caps_count_the_rolling_window_per_channel_and_across_channels():
    rules = GateSettings(frequency_caps={"email": (2, 86400), "all": (3, 86400)})
    hour = dt.timedelta(hours=1)
    two_emails = {"email": (NOW - 3 * hour, NOW - 2 * hour)}
    decision = decide(
        snapshot=snapshot(topic_state=granted(), recent_sends=two_emails),
        channel="email",
        topic=NEWS,
        now=NOW,
        settings=rules,
    )
    assert decision.reason == "frequency_capped"
    assert decision.retry_at == NOW - 3 * hour + dt.timedelta(days=1)
    one_each = {"email": (NOW - hour,), "sms": (NOW - hour, NOW - 2 * hour)}
    assert reason(snapshot(topic_state=granted(), recent_sends=one_each), rules=rules) == (
        "frequency_capped"
    )
    old = {"email": (NOW - 25 * hour, NOW - 26 * hour)}
    assert reason(snapshot(topic_state=granted(), recent_sends=old), rules=rules) == "allowed"
    assert reason(snapshot(recent_sends=two_emails), topic=RECEIPTS, rules=rules) == "allowed"


def test_a_stored_decision_explains_itself():
    rules = GateSettings(quiet_hours={"email": (dt.time(0), dt.time(23, 59))})
    decision = decide(
        snapshot=snapshot(topic_state=granted()),
        channel="email",
        topic=NEWS,
        now=NOW,
        settings=rules,
    )
    text = explain(decision.as_dict())
    assert text.startswith("Deferred: it is quiet hours")
    assert "Retry at 2026-03-10T23:59:00+00:00" in text
    assert explain({"reason": "withdrawn"}).startswith("Refused: the customer withdrew")


# -- properties ------------------------------------------------------------------------

_times = st.integers(min_value=0, max_value=10_000).map(lambda m: NOW - dt.timedelta(minutes=m))


def _states(actions):
    return st.one_of(
        st.none(),
        st.builds(
            RecordedState,
            action=st.sampled_from(actions),
            occurred_at=_times,
            event_id=st.integers(min_value=1, max_value=50),
        ),
    )


_topics = st.builds(
    TopicRule,
    key=st.just("t"),
    channels=st.just(frozenset({"email", "sms", "push"})),
    opt_out_default=st.booleans(),
    double_opt_in=st.booleans(),
    is_transactional=st.booleans(),
).filter(lambda t: not (t.double_opt_in and t.opt_out_default))
_snapshots = st.builds(
    Snapshot,
    customer_id=st.just(1),
    addresses=st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True).map(tuple),
    suppressed_addresses=st.frozensets(st.sampled_from(["a", "b"])),
    topic_state=_states(["grant", "withdraw", "pending"]),
    channel_state=_states(["grant", "withdraw"]),  # the ledger refuses channel-wide pending
    timezone=st.sampled_from(["", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe"]),
    erased=st.booleans(),
    recent_sends=st.dictionaries(
        st.sampled_from(["email", "sms"]), st.lists(_times, max_size=5).map(tuple)
    ),
)
_rules = st.builds(
    GateSettings,
    quiet_hours=st.dictionaries(
        st.sampled_from(["email", "sms"]),
        st.tuples(st.times(), st.times()).filter(lambda w: w[0] != w[1]),
    ),
    frequency_caps=st.dictionaries(
        st.sampled_from(["email", "sms", "all"]),
        st.tuples(st.integers(1, 4), st.integers(60, 86400 * 7)),
    ),
)


@settings(max_examples=300)
@given(snap=_snapshots, topic=_topics, rules=_rules, channel=st.sampled_from(["email", "sms"]))
def test_the_gate_never_allows_a_withdrawn_suppressed_erased_or_unconfirmed_recipient(
    snap, topic, rules, channel
):
    decision = decide(snapshot=snap, channel=channel, topic=topic, now=NOW, settings=rules)
    if not decision.allowed:
        return
    assert not snap.erased
    assert any(address not in snap.suppressed_addresses for address in snap.addresses)
    if topic.is_transactional:
        return
    topic_state, channel_state = snap.topic_state, snap.channel_state
    # The latest word on this topic, the channel-wide switch included, was a grant...
    latest = max(
        (s for s in (topic_state, channel_state) if s is not None),
        key=RecordedState.order,
        default=None,
    )
    if latest is not None and latest is channel_state and channel_state.action == "grant":
        latest = topic_state
    if latest is None:
        assert topic.opt_out_default
    else:
        assert latest.action == "grant"
    # ...and a double opt-in topic was confirmed.
    if topic.double_opt_in:
        assert topic_state is not None
        assert topic_state.action == "grant"


_instants = st.datetimes(
    min_value=dt.datetime(2026, 1, 1),  # noqa: DTZ001 (made aware by timezones=)
    max_value=dt.datetime(2027, 12, 31),  # noqa: DTZ001
    timezones=st.just(dt.UTC),
)
_dst_zones = st.sampled_from(
    ["Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"]
)


@settings(max_examples=500)
@given(
    now=_instants,
    zone_name=_dst_zones,
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)
def test_quiet_hours_defer_to_the_first_moment_outside_the_window_across_dst(
    now, zone_name, start, end
):
    if start == end:
        return
    zone = ZoneInfo(zone_name)

    def inside(moment):
        wall = moment.astimezone(zone).time().replace(tzinfo=None)
        return start <= wall < end if start < end else (wall >= start or wall < end)

    retry_at = gate.quiet_hours_end(now=now, window=(start, end), zone=zone)
    if retry_at is None:
        assert not inside(now)
        return
    assert inside(now)
    assert retry_at > now
    assert not inside(retry_at)
    # Never deferred further than needed: a minute earlier was still quiet (or now).
    just_before = max(now, retry_at - dt.timedelta(minutes=1))
    assert inside(just_before)
    # A day and a bit, except when the only minutes outside the window fall in a DST gap:
    # then the window ends the day after.
    assert retry_at - now <= dt.timedelta(hours=49)
