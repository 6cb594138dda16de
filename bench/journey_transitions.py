"""Journey engine throughput and tick cost.

    python bench/journey_transitions.py                  # 100,000 enrolments
    python bench/journey_transitions.py --enrolments 20000 --idle 1000000

Runs in its own database (``jl_bench_journeys``, created and migrated on first use) on
the configured PostgreSQL, never the development data. Prints:

1. enrolment through the service (3 transitions each: trigger, send, wait): one at a
   time (``journey_enrol``, the API path) for a sample of customers, then in batches
   (``journeys_enrol_many``, the reactor's path) against a floor measured in the same
   run: a raw INSERT of the same enrolment and transition rows, in the same batch size;
2. transitions per second through the 5-step journey start → hello (send) → pause (wait)
   → follow (webhook) → done (exit) for N enrolments waiting at ``pause``, ticking in
   ``--workers`` processes at once (default 2): the tick wakes them (2 transitions each,
   an outbox message each), against a floor measured in the same run: a raw UPDATE of
   the same rows plus a raw INSERT of the same transition rows, in the same batch size;
3. the cost of one tick when many enrolments wait and none is due, with the plan.
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

GRAPH = {
    "schema": 1,
    "steps": [
        {"id": "start", "kind": "trigger", "config": {"type": "api"}, "exits": {"next": "hello"}},
        {
            "id": "hello",
            "kind": "send",
            "config": {"channel": "email", "template": 1, "topic": "news"},
            "exits": {"next": "pause"},
        },
        {
            "id": "pause",
            "kind": "wait",
            "config": {"duration": {"hours": 1}},
            "exits": {"next": "follow"},
        },
        {
            "id": "follow",
            "kind": "webhook",
            "config": {"template": 2, "body": {"source": "bench"}},
            "exits": {"next": "done"},
        },
        {"id": "done", "kind": "exit"},
    ],
}


class CountingOutbox:
    """Stands in for the campaigns outbox (not built yet): counts what it is handed."""

    def __init__(self):
        self.messages = 0

    def enqueue(self, messages):
        self.messages += len(messages)

    def dispatch(self, keys):
        pass


class BenchTemplates:
    """Template 1 is an email, 2 a webhook (the outbox is the counting one above)."""

    def channel_of(self, template_id):
        return {1: "email", 2: "webhook"}.get(template_id)


def insert_floor(customer_ids: list[int], journey, now: dt.datetime, batch: int) -> None:
    """The floor of enrolment: the same rows (an enrolment waiting at "pause", its three
    transitions) inserted in raw SQL, a transaction per batch. Flagged paused, so the
    tick below leaves them alone."""
    from django.db import connection, transaction

    wake_at = now + dt.timedelta(hours=1)
    for start in range(0, len(customer_ids), batch):
        chunk = customer_ids[start : start + batch]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO journeys_enrolment (journey_id, version_id, customer_id, status, "
                "current_step, wake_at, awaited_event, trigger_payload, journey_paused, holdout,"
                " entered_at, state) "
                "SELECT %s, %s, c, 'waiting', 'pause', %s, '', '{}', true, false, %s, "
                "jsonb_build_object('step', 'pause', 'status', 'waiting') "
                "FROM unnest(%s::bigint[]) AS c RETURNING id",
                [journey.pk, journey.live_version_id, wake_at, now, chunk],
            )
            ids = [row[0] for row in cursor.fetchall()]
            cursor.execute(
                "INSERT INTO journeys_enrolmenttransition "
                "(enrolment_id, from_step, to_step, reason, data, actor, created_at) "
                "SELECT id, s.f, s.t, s.r, '{}', 'floor', %s FROM unnest(%s::bigint[]) id "
                "CROSS JOIN (VALUES ('', 'start', 'enter'), ('start', 'hello', 'next'), "
                "('hello', 'pause', 'next')) s(f, t, r)",
                [now, ids],
            )


def _tick_until_done(due_at, batch, results) -> None:
    from django.db import connection

    from journeys.ports import ports
    from journeys.services.tick import enrolments_due_tick

    messages_before = ports.outbox.messages
    moved = 0
    while claimed := enrolments_due_tick(now=due_at, batch_size=batch, max_batches=1000):
        moved += claimed
    connection.close()
    results.put((moved, ports.outbox.messages - messages_before))


def run_ticks(due_at, batch: int, workers: int) -> tuple[int, int]:
    """Tick in ``workers`` processes at once (SKIP LOCKED shares the due rows)."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # each process opens its own connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [
        context.Process(target=_tick_until_done, args=(due_at, batch, results))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    counts = [results.get() for _ in processes]
    for process in processes:
        process.join()
    return sum(moved for moved, _ in counts), sum(messages for _, messages in counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enrolments", type=int, default=100_000)
    parser.add_argument(
        "--sample", type=int, default=2_000, help="enrolments via the service one at a time"
    )
    parser.add_argument(
        "--enrol", type=int, default=20_000, help="enrolments via the service in batches"
    )
    parser.add_argument("--idle", type=int, default=None, help="waiting, none due (default N)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--workers", type=int, default=2, help="tick processes at once, as Celery workers would"
    )
    args = parser.parse_args()
    idle = args.idle if args.idle is not None else args.enrolments
    setup_database("jl_bench_journeys")

    from django.db import connection, transaction

    from customers.models import Customer
    from journeys.engine import Enrol, State, advance
    from journeys.models import Enrolment, EnrolmentTransition, Journey
    from journeys.ports import register_outbox, register_template_catalog
    from journeys.services.enrolments import Entry, journey_enrol, journeys_enrol_many
    from journeys.services.journeys import journey_create, journey_pause, journey_publish
    from journeys.services.tick import enrolments_due_tick

    # The bench database holds nothing but what the previous run left: start empty.
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE journeys_enrolmenttransition, journeys_enrolment, journeys_journeyversion, "
            "journeys_journey, customers_customer CASCADE"
        )
    outbox = CountingOutbox()
    register_outbox(outbox)
    register_template_catalog(BenchTemplates())
    run = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")

    def published(name: str) -> Journey:
        journey = journey_create(name=name, graph=GRAPH)
        journey_publish(journey=journey)
        journey.refresh_from_db()
        return journey

    sample_journey = published(f"bench sample {run}")
    journey = published(f"bench {run}")
    now = dt.datetime.now(dt.UTC)

    def make_customers(count: int, tag: str) -> list[int]:
        rows = Customer.objects.bulk_create(
            (
                Customer(external_id=f"bench-{run}-{tag}-{n}", email=f"b{n}@example.com")
                for n in range(count)
            ),
            batch_size=5000,
        )
        return [row.pk for row in rows]

    # 1. Enrolment through the service: one customer at a time (the API path), then in
    # batches (the reactor and date-trigger path), against a raw INSERT of the same rows.
    sample_ids = make_customers(args.sample, "sample")
    customers = Customer.objects.in_bulk(sample_ids)
    started, cpu = time.perf_counter(), time.process_time()
    for customer_id in sample_ids:
        journey_enrol(journey=sample_journey, customer=customers[customer_id], now=now)
    enrol_seconds = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu) * 1000 / args.sample
    print(
        f"enrol via service, one at a time: {args.sample:,} enrolments in {enrol_seconds:.2f}s = "
        f"{args.sample / enrol_seconds:,.0f} enrolments/s, "
        f"{3 * args.sample / enrol_seconds:,.0f} transitions/s; "
        f"{cpu_ms:.2f} ms Python CPU per enrolment"
    )
    batch_ids = make_customers(args.enrol, "batch")
    customers = Customer.objects.in_bulk(batch_ids)
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(batch_ids), args.batch):
        journeys_enrol_many(
            entries=[
                Entry(journey_id=sample_journey.pk, customer=customers[customer_id])
                for customer_id in batch_ids[start : start + args.batch]
            ],
            now=now,
        )
    batch_seconds = time.perf_counter() - started
    cpu_ms = (time.process_time() - cpu) * 1000 / args.enrol
    batch_rate = args.enrol / batch_seconds
    floor_ids = make_customers(args.enrol, "floor")
    started = time.perf_counter()
    insert_floor(floor_ids, sample_journey, now, args.batch)
    floor_rate = args.enrol / (time.perf_counter() - started)
    print(
        f"enrol via service, batches of {args.batch}: {args.enrol:,} enrolments in "
        f"{batch_seconds:.2f}s = {batch_rate:,.0f} enrolments/s; floor (raw INSERT of the "
        f"same enrolment and transition rows) {floor_rate:,.0f}/s; "
        f"service at {batch_rate / floor_rate:.2f}x the floor; "
        f"{cpu_ms:.2f} ms Python CPU per enrolment"
    )
    journey_pause(journey=sample_journey)  # its enrolments stay out of the tick below

    # 2. N enrolments waiting at "pause", due now; written in bulk (set-up, not measured).
    def bulk_waiting(count: int, wake_at: dt.datetime, tag: str) -> list[int]:
        ids = make_customers(count, tag)
        template_state, _ = advance(GRAPH, State("0"), Enrol({}), wake_at - dt.timedelta(hours=1))
        rows = []
        for customer_id in ids:
            rows.append(
                Enrolment(
                    journey=journey,
                    version=journey.live_version,
                    customer_id=customer_id,
                    status="waiting",
                    current_step="pause",
                    wake_at=wake_at,
                    entered_at=now,
                    state={
                        **template_state.to_json(),
                        "enrolment_id": f"bench-{customer_id}",
                        "wake_at": wake_at.isoformat(),
                    },
                )
            )
        created = Enrolment.objects.bulk_create(rows, batch_size=5000)
        return [row.pk for row in created]

    due_at = now + dt.timedelta(hours=1)
    ids = bulk_waiting(args.enrolments, due_at, "due")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE journeys_enrolment")
    before = EnrolmentTransition.objects.count()
    started = time.perf_counter()
    moved, messages = run_ticks(due_at, args.batch, args.workers)
    tick_seconds = time.perf_counter() - started
    transitions = EnrolmentTransition.objects.count() - before
    rate = transitions / tick_seconds
    print(
        f"tick through the journey ({args.workers} workers): {moved:,} enrolments, {transitions:,} transitions, "
        f"{messages:,} outbox messages in {tick_seconds:.2f}s = {rate:,.0f} transitions/s"
    )

    # The floor: the same rows updated and the same transition rows inserted in raw SQL.
    started = time.perf_counter()
    for start in range(0, len(ids), args.batch):
        chunk = ids[start : start + args.batch]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM journeys_enrolment WHERE id = ANY(%s) FOR UPDATE", [chunk]
            )
            cursor.execute(
                "UPDATE journeys_enrolment SET status = 'completed', current_step = 'done', "
                "wake_at = NULL, finished_at = now(), state = state WHERE id = ANY(%s)",
                [chunk],
            )
            cursor.execute(
                "INSERT INTO journeys_enrolmenttransition "
                "(enrolment_id, from_step, to_step, reason, data, actor, created_at) "
                "SELECT id, s.f, s.t, 'next', '{}', 'floor', now() FROM unnest(%s::bigint[]) id "
                "CROSS JOIN (VALUES ('pause', 'follow'), ('follow', 'done')) s(f, t)",
                [chunk],
            )
    floor_seconds = time.perf_counter() - started
    floor_rate = transitions / floor_seconds
    print(
        f"floor (raw UPDATE + INSERT of the same rows): {floor_seconds:.2f}s = "
        f"{floor_rate:,.0f} transitions/s; engine at {rate / floor_rate:.2f}x the floor"
    )

    # 3. Tick cost when many wait and none is due.
    bulk_waiting(idle, now + dt.timedelta(days=30), "idle")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE journeys_enrolment")
    timings = []
    for _ in range(30):
        started = time.perf_counter()
        enrolments_due_tick(now=now + dt.timedelta(hours=2))
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"idle tick with {idle:,} waiting, none due: median {statistics.median(timings):.2f} ms, "
        f"max {max(timings):.2f} ms over {len(timings)} ticks"
    )
    query = (
        Enrolment.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("customer")
        .filter(status="waiting", journey_paused=False, wake_at__lte=now + dt.timedelta(hours=2))
        .order_by("wake_at")[: args.batch]
    )
    with transaction.atomic():
        print("tick plan:\n  " + query.explain().replace("\n", "\n  "))


if __name__ == "__main__":
    main()
