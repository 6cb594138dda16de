"""Consent gate throughput: decisions per second, one customer at a time and in batches.

    DEBUG=true PYTHONPATH=. .venv/bin/python bench/consent_gate.py [--customers 20000]

Runs in a throw-away database (``bench_jl_consent`` on the same server), fills it with
customers of mixed consent, and prints:

- the pure decision alone (no I/O),
- ``consent_decide`` one customer at a time,
- ``consent_decide_many`` in batches of 1,000 (target: >= 20,000 decisions/s),
- the floor: one raw SQL query loading the same customers' profile and consent rows,
  and the batch figure as a multiple of that floor.
"""

import argparse
import datetime as dt
import gc
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.db import connection  # noqa: E402

BENCH_DB = "bench_jl_consent"
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
BATCH = 1000


def _fill(customers: int, seed: int) -> list[int]:
    from consent.models import Action, ConsentEvent, SendLog, Topic
    from consent.services.ledger import consent_state_rebuild
    from consent.services.suppression import suppression_add
    from customers.models import Customer

    rng = random.Random(seed)
    topic = Topic.objects.create(key="news", name="News", channels=["email", "sms"])
    rows = [
        Customer(
            external_id=f"bench-{n}",
            email=f"bench{n}@example.com" if rng.random() > 0.02 else "",
            phone=f"+3161{n:07d}",
            timezone=rng.choice(["Europe/Amsterdam", "America/New_York", "Asia/Tokyo", ""]),
        )
        for n in range(customers)
    ]
    created = Customer.objects.bulk_create(rows, batch_size=5000)
    ids = [customer.pk for customer in created]
    events = []
    for customer_id in ids:
        roll = rng.random()
        if roll < 0.7:
            events.append(
                ConsentEvent(
                    customer_id=customer_id,
                    channel="email",
                    topic=topic,
                    action=Action.GRANT,
                    source="import",
                    occurred_at=NOW,
                )
            )
        elif roll < 0.8:
            events.append(
                ConsentEvent(
                    customer_id=customer_id,
                    channel="email",
                    topic=None,
                    action=Action.WITHDRAW,
                    source="import",
                    occurred_at=NOW,
                )
            )
    ConsentEvent.objects.bulk_create(events, batch_size=5000)
    consent_state_rebuild()
    for customer in rng.sample(created, len(created) // 100):
        if customer.email:
            suppression_add(kind="email", address=customer.email, reason="hard_bounce")
    SendLog.objects.bulk_create(
        [
            SendLog(customer_id=customer_id, channel="email", topic_key="news",
                    sent_at=NOW - dt.timedelta(hours=rng.randint(1, 30)))
            for customer_id in rng.sample(ids, len(ids) // 5)
            for _ in range(2)
        ],
        batch_size=5000,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids


def _rate(count: int, seconds: list[float]) -> float:
    return count / statistics.median(seconds)


def _floor(batch: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.email, c.timezone, s.topic_id, s.action, s.occurred_at "
            "FROM customers_customer c LEFT JOIN consent_consentstate s "
            "ON s.customer_id = c.id AND s.channel = 'email' WHERE c.id = ANY(%s)",
            [batch],
        )
        cursor.fetchall()


def run(customers: int, seed: int, rounds: int) -> None:
    from consent.gate import decide
    from consent.models import Topic
    from consent.services.gate import (
        consent_decide,
        consent_decide_many,
        gate_settings,
        snapshots_load,
        topic_rule,
    )

    ids = _fill(customers, seed)
    # Measure the gate, not the collector walking the setup's leftovers: long-lived
    # workers do the same after boot (gc.freeze() in a gunicorn/Celery post-fork hook).
    gc.collect()
    gc.freeze()
    batches = [ids[i : i + BATCH] for i in range(0, len(ids) - BATCH + 1, BATCH)]
    consent_decide_many(customer_ids=batches[0], channel="email", topic_key="news", now=NOW)

    batch_times, floor_times = [], []
    for _ in range(rounds):
        for batch in batches:
            started = time.perf_counter()
            decisions = consent_decide_many(
                customer_ids=batch, channel="email", topic_key="news", now=NOW
            )
            batch_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            _floor(batch)
            floor_times.append(time.perf_counter() - started)
    assert len(decisions) == len(batches[-1])

    single = ids[:500]
    started = time.perf_counter()
    for customer_id in single:
        consent_decide(customer_id=customer_id, channel="email", topic_key="news", now=NOW)
    single_rate = len(single) / (time.perf_counter() - started)

    topic = topic_rule(Topic.objects.get(key="news"))
    rules = gate_settings()
    snapshots = list(
        snapshots_load(customer_ids=batches[0], channel="email", topic_id=None, now=NOW,
                       cap_window_seconds=rules.longest_cap_window()).values()
    )  # fmt: skip
    started = time.perf_counter()
    for _ in range(20):
        for snapshot in snapshots:
            decide(snapshot=snapshot, channel="email", topic=topic, now=NOW, settings=rules)
    pure_rate = 20 * len(snapshots) / (time.perf_counter() - started)

    reasons: dict[str, int] = {}
    for decision in decisions.values():
        reasons[decision.reason] = reasons.get(decision.reason, 0) + 1
    batch_rate = _rate(BATCH, batch_times)
    floor_rate = _rate(BATCH, floor_times)
    print(f"customers: {customers:,}  batches of {BATCH:,}  rounds: {rounds}")
    print(f"last batch reasons: {dict(sorted(reasons.items()))}")
    print(f"pure decide():                {pure_rate:>12,.0f} decisions/s")
    print(f"consent_decide (one by one):  {single_rate:>12,.0f} decisions/s")
    print(f"consent_decide_many (1,000):  {batch_rate:>12,.0f} decisions/s  (target >= 20,000)")
    print(f"floor, one raw SQL query:     {floor_rate:>12,.0f} rows/s")
    print(f"batch cost / floor cost:      {floor_rate / batch_rate:>12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    arguments = parser.parse_args()

    connection.settings_dict["TEST"]["NAME"] = BENCH_DB
    original = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        run(arguments.customers, arguments.seed, arguments.rounds)
    finally:
        connection.creation.destroy_test_db(original, verbosity=0)


if __name__ == "__main__":
    main()
