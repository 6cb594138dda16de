"""Training item-to-item recommendations: customers per second and peak memory.

    python bench/recommendations.py                     # 100,000 customers, 5,000 products
    python bench/recommendations.py --customers 1000000 --products 50000 --before

Runs in its own database (``jl_bench_recommendations``, created and migrated on first
use). Customers view (3 per customer on average) and order (0.5 orders of 2 products per
customer) products of very unequal popularity (a product's share falls with the cube of
its rank), over the last 300 days; the population is kept between runs of the same size.

Prints ``recommendations_train`` (stream the interactions, sparse top-200 neighbours per
item, score and write customers in batches): customers with recommendations per second,
CPU of this process and of the PostgreSQL backend, and how much this process's peak memory
grew; against the floor of the interactions query alone, streamed, in the same run.
``--before`` also runs the implementation before streaming (dense item x item similarity,
every pair in memory), loaded from git history, for the memory figure; beware that it
needs items x items x 8 bytes.
"""

import argparse
import datetime as dt
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

DATABASE = "jl_bench_recommendations"
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
# The last commit with the dense implementation.
BEFORE = "53a5b65"


def generate(customers: int, products: int) -> None:
    from django.db import connection
    from segment_recompute import generate as generate_customers

    generate_customers(customers, 0, NOW)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.7)")
        cursor.execute(
            """
            INSERT INTO customers_event
                (customer_id, type, name, properties, context, timestamp, received_at,
                 message_id, handed_over_at)
            SELECT 1 + floor(random() * %(customers)s)::bigint, 'track', 'Product Viewed',
                   jsonb_build_object('product_id', 'p' || floor(%(products)s * random() ^ 3)::int,
                                      'name', 'Product', 'price', 10),
                   '{}'::jsonb, %(now)s - random() * interval '300 days', %(now)s,
                   'rec-view-' || g, %(now)s
            FROM generate_series(1, %(customers)s * 3) AS g
            """,
            {"customers": customers, "products": products, "now": NOW},
        )
        cursor.execute(
            """
            INSERT INTO customers_event
                (customer_id, type, name, properties, context, timestamp, received_at,
                 message_id, handed_over_at)
            SELECT 1 + floor(random() * %(customers)s)::bigint, 'track', 'Order Completed',
                   jsonb_build_object('products', jsonb_build_array(
                       jsonb_build_object('product_id', 'p' || floor(%(products)s * random() ^ 3)::int),
                       jsonb_build_object('product_id', 'p' || floor(%(products)s * random() ^ 3)::int))),
                   '{}'::jsonb, %(now)s - random() * interval '300 days', %(now)s,
                   'rec-order-' || g, %(now)s
            FROM generate_series(1, %(customers)s / 2) AS g
            """,
            {"customers": customers, "products": products, "now": NOW},
        )
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_size (customers bigint, products bigint)")
        cursor.execute("TRUNCATE bench_size")
        cursor.execute("INSERT INTO bench_size VALUES (%s, %s)", [customers, products])
        cursor.execute("ANALYZE")


def population_size() -> tuple[int, int] | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_size') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT customers, products FROM bench_size")
        return cursor.fetchone()


def load_before():
    """The dense implementation, as it was before streaming, from git history."""
    source = subprocess.run(
        ["git", "show", f"{BEFORE}:segments/ml/recommendations.py"],
        cwd=BASE_DIR,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    spec = importlib.util.spec_from_loader("recommendations_before", loader=None)
    module = importlib.util.module_from_spec(spec)
    exec(compile(source, "recommendations_before.py", "exec"), module.__dict__)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument("--before", action="store_true", help="also run the dense version")
    args = parser.parse_args()
    print("command: python " + " ".join(sys.argv))

    from model_scoring import Measured
    from support import setup_database

    setup_database(DATABASE, migrate=not args.no_migrate)
    from django.db import connection

    from segments.ml.recommendations import (
        _MENTIONS,
        FETCH,
        ORDER_EVENT,
        VIEW_EVENT,
        WINDOW_DAYS,
        recommendations_train,
    )
    from segments.models import CustomerRecommendation

    if args.regenerate or population_size() != (args.customers, args.products):
        started = time.perf_counter()
        generate(args.customers, args.products)
        print(
            f"generated {args.customers:,} customers and their views and orders of "
            f"{args.products:,} products in {time.perf_counter() - started:.1f} s"
        )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]

    # Floor: the interactions query alone, streamed and thrown away.
    params = [[VIEW_EVENT, ORDER_EVENT], NOW, NOW - dt.timedelta(days=WINDOW_DAYS)]
    with Measured(backend) as floor:
        pairs = 0
        with connection.chunked_cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id, item ->> 'product_id', bool_or(name = %s) "
                f"FROM ({_MENTIONS}) AS mention GROUP BY 1, 2 ORDER BY 1, 2",
                [ORDER_EVENT, *params],
            )
            while batch := cursor.fetchmany(FETCH):
                pairs += len(batch)

    with Measured(backend) as service:
        model = recommendations_train(now=NOW)
    customers = model.metrics["customers_with_recommendations"]
    assert CustomerRecommendation.objects.filter(model_version=model).count() == customers
    print(
        f"\n{model.metrics['customers']:,} customers with {pairs:,} (customer, item) pairs "
        f"over {model.metrics['items']:,} items; {customers:,} get recommendations"
    )
    print(service.line("recommendations_train", customers))
    print(floor.line("floor: interactions", customers))
    print(
        f"  ratio                 : {service.wall / floor.wall:8.2f} (train / interactions query)"
    )
    if args.before:
        before = load_before()
        with Measured(backend) as dense:
            before.recommendations_train(now=NOW)
        print(dense.line("before (dense)", customers))


if __name__ == "__main__":
    main()
