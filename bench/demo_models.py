"""How well the demo's propensity models do on holdout, for a few seeds of the demo store.

    python bench/demo_models.py                       # 2,000 customers, 90 days, seeds 1 2 3
    python bench/demo_models.py --customers 500 --seeds 1 7

For each seed: generates the store as ``make demo`` does (``generate_store``, timed), writes
it into a database of its own (``jl_bench_demo_models`` by default, created and migrated on
first use, emptied before each seed) with one profile per demo customer and one event per
message (what the ingest stores for them, written with ``COPY`` instead of HTTP, so it takes
seconds), then trains the churn and purchase models with ``model_train`` and prints their
holdout ROC AUC, PR AUC and base rate, the training/holdout label shares, and the share of
each customer type that the churn label calls churned in each window (label noise: a steady
customer silent for the whole horizon by chance), and which features a model left out for
lack of history (``--days 240`` for an installation old enough to keep every window).
"""

import argparse
import datetime as dt
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

DATABASE = "jl_bench_demo_models"
NOW = dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.UTC)


def _write_store(store) -> dict[int, str]:
    """One profile per demo customer, one event per message; return segment by id."""
    import orjson
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE customers_customer, customers_event RESTART IDENTITY CASCADE")
        segment_of: dict[int, str] = {}
        customer_rows = []
        for number, customer in enumerate(store.customers, start=1):
            first = min(message["timestamp"] for message in customer.messages)
            last = max(message["timestamp"] for message in customer.messages)
            customer_rows.append((number, customer.user_id, customer.email, first, last))
            segment_of[number] = customer.segment
        with cursor.copy(
            "COPY customers_customer (id, external_id, email, phone, timezone, locale, traits,"
            " first_seen, last_seen, created_at, updated_at) FROM STDIN"
        ) as copy:
            for number, user_id, email, first, last in customer_rows:
                copy.write_row((number, user_id, email, "", "", "", "{}", first, last, NOW, NOW))
        with cursor.copy(
            "COPY customers_event (customer_id, type, name, properties, context, timestamp,"
            " received_at, message_id, handed_over_at) FROM STDIN"
        ) as copy:
            for number, customer in enumerate(store.customers, start=1):
                for message in customer.messages:
                    kind = message["type"]
                    name = message.get("event") or message.get("name") or ""
                    properties = orjson.dumps(message.get("properties", {})).decode()
                    copy.write_row(
                        (number, kind, name, properties, "{}", message["timestamp"], NOW,
                         message["messageId"], NOW)
                    )  # fmt: skip
        cursor.execute("SELECT setval('customers_customer_id_seq', %s)", [len(customer_rows)])
        cursor.execute("ANALYZE customers_customer; ANALYZE customers_event")
    return segment_of


def _silent_shares(segment_of: dict[int, str], *, horizon_days: int) -> str:
    """Per customer type: churn-labelled / present, in the training and holdout windows."""
    from segments.ml.features import customer_features, labels

    parts = []
    for label, as_of in (
        ("train", NOW - dt.timedelta(days=2 * horizon_days)),
        ("holdout", NOW - dt.timedelta(days=horizon_days)),
    ):
        present = customer_features(as_of=as_of, event_names=[]).customer_ids
        churned = labels(kind="churn", customer_ids=present, start=as_of, horizon_days=horizon_days)
        totals, silent = Counter(), defaultdict(int)
        for customer_id, value in zip(present, churned, strict=True):
            totals[segment_of[int(customer_id)]] += 1
            silent[segment_of[int(customer_id)]] += int(value)
        shares = ", ".join(
            f"{segment} {silent[segment]}/{totals[segment]}" for segment in sorted(totals)
        )
        parts.append(f"    silent {horizon_days}d in {label:<7}: {shares}")
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--database", default=DATABASE)
    arguments = parser.parse_args()

    from support import setup_database

    setup_database(arguments.database)
    from django.conf import settings

    settings.DEBUG = False  # no query log

    from customers.demo.store import generate_store
    from segments.ml.training import model_train

    print(
        "command: python bench/demo_models.py "
        f"--customers {arguments.customers} --days {arguments.days} "
        f"--seeds {' '.join(map(str, arguments.seeds))}"
    )
    print(f"load average: {' '.join(f'{value:.2f}' for value in os.getloadavg())}")
    summary = []
    for seed in arguments.seeds:
        cpu = time.process_time()
        store = generate_store(
            customers=arguments.customers, days=arguments.days, seed=seed, now=NOW
        )
        generate_cpu = time.process_time() - cpu
        segment_of = _write_store(store)
        print(
            f"seed {seed}: {store.message_count:,} messages, generated in "
            f"{generate_cpu:.2f} s CPU ({1e6 * generate_cpu / store.message_count:.1f} µs/message)"
        )
        print(_silent_shares(segment_of, horizon_days=30))
        figures = []
        for kind in ("churn", "purchase"):
            cpu = time.process_time()
            model = model_train(kind=kind, now=NOW, activate=False)
            metrics = model.metrics
            print(
                f"    {kind:<8}: ROC AUC {metrics['roc_auc']:.3f}  PR AUC {metrics['pr_auc']:.3f}"
                f"  base rate {metrics['base_rate']:.3f}  rows {metrics['training_rows']}"
                f"/{metrics['holdout_rows']}  trained in {time.process_time() - cpu:.1f} s CPU"
            )
            left_out = model.parameters.get("features_left_out") or []
            print(
                f"    {'':<8}  {len(model.features)} features on "
                f"{model.parameters.get('history_days')} days of history before the training "
                f"rows; left out: {', '.join(left_out) or 'none'}"
            )
            figures.append(metrics["roc_auc"])
        summary.append((seed, *figures))
    print("seed  churn ROC AUC  purchase ROC AUC")
    for seed, churn, purchase in summary:
        print(f"{seed:>4}  {churn:>13.3f}  {purchase:>16.3f}")


if __name__ == "__main__":
    main()
