"""Segment recompute and incremental re-evaluation.

    python bench/segment_recompute.py                         # 200,000 customers, 2,000,000 events
    python bench/segment_recompute.py --customers 1000000 --events 10000000

Runs in its own database (``jl_bench_segments``, created and migrated on first use) on the
configured PostgreSQL, never the development data; the population is generated in SQL and
kept between runs of the same size (``--regenerate`` forces a new one). Prints:

1. the compiled query of a rule with trait, event and score conditions (ids of all
   matching customers), against the floor of the same query written by hand in SQL,
   measured in the same run (median of ``--repeat`` runs each) — and the ratio;
2. a full recompute through ``segment_recompute`` (chunks, differences, events), first
   from empty and then with nothing changed;
3. incremental re-evaluation per incoming event through the segments reactor, with five
   segments defined: median and 95th percentile in ms.

The default is smaller than the issue's 1,000,000 customers / 10,000,000 events because
generating those takes minutes on 2 cores; pass the sizes to run at full scale. The
population is kept: a second run of the same size starts at once.

    python bench/segment_recompute.py --customers 1000000 --events 10000000 --only incremental

runs only step 3 on the kept population and segments (``--no-migrate`` also leaves the
bench database's schema as it is), for profiling the per-event path without paying the
full recompute each time. ``--compare-binding`` alternates the events between prepared
statements and client-side binding (the way before) and prints both.

``Segment Entered`` events written by the recompute are not handed to Celery here (the
bench database is not the one a worker serves): the hand-over is counted instead.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

from bench.support import setup_database  # noqa: E402

RULE = {
    "all": [
        {"trait": {"key": "plan", "op": "equals", "value": "pro"}},
        {
            "event": {
                "name": "Order Completed",
                "within_days": 30,
                "count": {"at_least": 2},
                "where": [{"property": "total", "op": "greater_than", "value": 50}],
            }
        },
        {"score": {"model": "churn", "op": "above", "value": 0.5}},
    ]
}
OTHER_SEGMENTS = {
    "trial": {"trait": {"key": "plan", "op": "equals", "value": "trial"}},
    "viewers": {"event": {"name": "Product Viewed", "within_days": 7, "count": {"at_least": 3}}},
    "no-orders": {"event": {"name": "Order Completed", "performed": False}},
    "pro-viewers": {
        "all": [{"segment": {"key": "bench-rule"}}, {"event": {"name": "Product Viewed"}}]
    },
}

# The same query as RULE, written by hand: what a person would give PostgreSQL.
HAND_SQL = """
SELECT c.id FROM customers_customer c
JOIN (
    SELECT e.customer_id FROM customers_event e
    WHERE e.name = 'Order Completed' AND e.timestamp <= %(now)s AND e.timestamp > %(since)s
      AND jsonb_typeof(e.properties -> 'total') = 'number' AND e.properties -> 'total' > '50'
    GROUP BY e.customer_id HAVING count(*) >= 2
) orders ON orders.customer_id = c.id
JOIN segments_customerscore s ON s.customer_id = c.id AND s.kind = 'churn' AND s.score > 0.5
WHERE c.traits -> 'plan' = '"pro"'
"""


def generate(customers: int, events: int, now: dt.datetime) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE segments_customerscore, segments_modelversion, segments_segmentmembership, "
            "segments_segment, customers_event, customers_device, customers_identity, "
            "customers_customer RESTART IDENTITY CASCADE"
        )
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            """
            INSERT INTO customers_customer
                (external_id, email, phone, timezone, locale, traits, first_seen, last_seen,
                 created_at, updated_at)
            SELECT 'bench-' || g, 'bench' || g || '@example.com', '', '', '',
                   jsonb_build_object('plan', (ARRAY['free', 'pro', 'trial'])[1 + g %% 3],
                                      'age', 18 + g %% 60),
                   %(now)s - (g %% 365) * interval '1 day', %(now)s - (g %% 30) * interval '1 day',
                   %(now)s, %(now)s
            FROM generate_series(1, %(customers)s) AS g
            """,
            {"now": now, "customers": customers},
        )
        cursor.execute(
            """
            INSERT INTO customers_event
                (customer_id, type, name, properties, context, timestamp, received_at,
                 message_id, handed_over_at)
            SELECT 1 + floor(random() * %(customers)s)::bigint, 'track',
                   (ARRAY['Product Viewed', 'Product Viewed', 'Order Completed', 'Email Opened'])[1 + g %% 4],
                   jsonb_build_object('total', floor(random() * 200)::int),
                   '{}'::jsonb, %(now)s - random() * interval '180 days', %(now)s,
                   'bench-' || g, %(now)s
            FROM generate_series(1, %(events)s) AS g
            """,
            {"now": now, "customers": customers, "events": events},
        )
        cursor.execute("ANALYZE")


def generate_scores(now: dt.datetime) -> None:
    """A model version and a random churn score for every customer."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE segments_customerscore, segments_modelversion RESTART IDENTITY CASCADE"
        )
        cursor.execute(
            """
            INSERT INTO segments_modelversion
                (kind, version, parameters, features, metrics, feature_importances,
                 feature_summary, drift, trained_at, training_seconds, artefact, is_active)
            VALUES ('churn', 1, '{}', '[]', '{}', '{}', '{}', '{}', %(now)s, 0, '', true)
            """,
            {"now": now},
        )
        cursor.execute(
            """
            INSERT INTO segments_customerscore
                (customer_id, kind, model_version_id, score, percentile, scored_at)
            SELECT id, 'churn', (SELECT id FROM segments_modelversion), random(), 0, %(now)s
            FROM customers_customer
            """,
            {"now": now},
        )
        cursor.execute("ANALYZE")


def scores_present(customers: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM segments_customerscore")
        return cursor.fetchone()[0] == customers


def population_size() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM customers_customer), "
            "(SELECT count(*) FROM customers_event WHERE message_id LIKE 'bench-%%')"
        )
        return cursor.fetchone()


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--incremental", type=int, default=1_000, help="events re-evaluated one by one"
    )
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument(
        "--only",
        choices=["incremental"],
        help="run only this step, on the kept population and segments",
    )
    parser.add_argument(
        "--no-migrate", action="store_true", help="use the bench database's schema as it is"
    )
    parser.add_argument(
        "--no-prepared",
        action="store_true",
        help="per-event statements with client-side binding, as before they were prepared",
    )
    parser.add_argument(
        "--compare-binding",
        action="store_true",
        help="alternate events between prepared statements and client-side binding",
    )
    args = parser.parse_args()
    print("command: python " + " ".join(sys.argv))
    setup_database("jl_bench_segments", migrate=not args.no_migrate)
    if args.no_prepared:
        from django.conf import settings

        settings.SEGMENTS_PREPARED_STATEMENTS = False

    from django.db import connection

    from customers.models import Customer
    from segments.models import Segment
    from segments.rules import compile_rule
    from segments.services import memberships
    from segments.services.definitions import segment_create
    from segments.services.memberships import segment_recompute

    handed_over = []
    memberships.events_enqueue_hand_over = lambda *, event_ids: handed_over.extend(event_ids)

    now = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    if args.regenerate or population_size() != (args.customers, args.events):
        started = time.perf_counter()
        generate(args.customers, args.events, now)
        print(
            f"generated {args.customers:,} customers and {args.events:,} events in {time.perf_counter() - started:.1f} s"
        )
    if not scores_present(args.customers):
        generate_scores(now)
    incremental_only = args.only == "incremental" and set(
        Segment.objects.values_list("key", flat=True)
    ) == {"bench-rule", *OTHER_SEGMENTS}
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM customers_event WHERE message_id LIKE 'incremental-%%'"
            + ("" if incremental_only else " OR message_id LIKE 'segment-%%'")
        )
        if not incremental_only:
            cursor.execute(
                "TRUNCATE segments_segmentmembership, segments_segment RESTART IDENTITY CASCADE"
            )
    if incremental_only:
        incremental(args, now)
        return

    # 1. the compiled query against the hand-written floor
    compiled = Customer.objects.filter(compile_rule(RULE, now=now)).values_list("pk", flat=True)
    compiled_seconds, compiled_ids = timed(lambda: list(compiled.all()), args.repeat)

    def hand() -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(HAND_SQL, {"now": now, "since": now - dt.timedelta(days=30)})
            return [row[0] for row in cursor.fetchall()]

    hand_seconds, hand_ids = timed(hand, args.repeat)
    assert sorted(compiled_ids) == sorted(hand_ids), "the compiled query and the floor disagree"
    print(
        f"\nrule: trait + event (count in a window, property filter) + score over {args.customers:,} customers, {args.events:,} events"
    )
    print(f"  compiled query : {compiled_seconds:8.3f} s  ({len(compiled_ids):,} customers)")
    print(f"  hand-written   : {hand_seconds:8.3f} s  (floor)")
    print(f"  ratio          : {compiled_seconds / hand_seconds:8.2f}")

    # 2. full recompute through the service
    segment = segment_create(key="bench-rule", name="Bench rule", rules=RULE)
    first_seconds, first = timed(lambda: segment_recompute(segment=segment, now=now), 1)
    again_seconds, again = timed(lambda: segment_recompute(segment=segment, now=now), 1)
    print("\nfull recompute (segment_recompute, chunks of 20,000 ids)")
    print(
        f"  from empty     : {first_seconds:8.3f} s  ({first.entered:,} entered, {len(handed_over):,} events written)"
    )
    print(f"  nothing changed: {again_seconds:8.3f} s  ({again.entered + again.exited} changes)")

    # 3. incremental re-evaluation per event through the reactor
    for key, rules in OTHER_SEGMENTS.items():
        segment_create(key=key, name=key, rules=rules)
    incremental(args, now)


def incremental(args, now: dt.datetime) -> None:
    """Step 3: one event at a time through the segments reactor, each in its own
    transaction as the hand-over runs it.

    With ``--compare-binding`` the events alternate between prepared statements and
    client-side binding (the way before), so both see the same load and the same cache.
    """
    from django.conf import settings
    from django.db import connection, transaction

    from customers.models import Customer, Event
    from segments import reactors
    from segments.models import Segment, SegmentMembership

    customer_ids = list(
        Customer.objects.order_by("?").values_list("pk", flat=True)[: args.incremental]
    )
    modes = [True, False] if args.compare_binding else [settings.SEGMENTS_PREPARED_STATEMENTS]
    durations = {mode: [] for mode in modes}
    query_counts = {mode: [] for mode in modes}
    client_cpu = dict.fromkeys(modes, 0.0)
    server_cpu = dict.fromkeys(modes, 0.0)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    for number, customer_id in enumerate(customer_ids):
        mode = modes[number % len(modes)]
        settings.SEGMENTS_PREPARED_STATEMENTS = mode
        with transaction.atomic():
            event = Event.objects.create(
                customer_id=customer_id, type="track", name="Order Completed",
                properties={"total": 120}, timestamp=now, message_id=f"incremental-{number}",
            )  # fmt: skip
            event = Event.objects.select_related("customer").get(pk=event.pk)
            queries.clear()
            with connection.execute_wrapper(count):
                server_started, client_started = _run_time(backend), time.process_time()
                started = time.perf_counter()
                reactors.on_events([event])
                durations[mode].append((time.perf_counter() - started) * 1000)
                client_cpu[mode] += time.process_time() - client_started
                server_cpu[mode] += _run_time(backend) - server_started
            query_counts[mode].append(len(queries))
    members = SegmentMembership.objects.filter(exited_at=None).count()
    print(
        f"\nincremental re-evaluation per event ({len(customer_ids):,} events, {Segment.objects.count()} segments, {members:,} open stays)"
    )
    for mode in modes:
        times, events = sorted(durations[mode]), len(durations[mode])
        print(f"  {'prepared statements' if mode else 'client-side binding'} ({events:,} events)")
        print(f"    median         : {statistics.median(times):8.3f} ms")
        print(f"    95th percentile: {times[int(events * 0.95) - 1]:8.3f} ms")
        print(
            f"    queries/event  : {statistics.median(query_counts[mode]):8.0f}   (median; at most {max(query_counts[mode])})"
        )
        # CPU time, unlike wall time, hardly moves when other work shares the cores.
        print(
            f"    CPU per event  : {(client_cpu[mode] + server_cpu[mode]) * 1000 / events:8.3f} ms  "
            f"(mean; this process {client_cpu[mode] * 1000 / events:.3f} + PostgreSQL backend "
            f"{server_cpu[mode] * 1000 / events:.3f})"
        )


def _run_time(pid: int) -> float:
    """Seconds of CPU a process on this machine has run (0 when the server is remote)."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except OSError:
        return 0.0


if __name__ == "__main__":
    main()
