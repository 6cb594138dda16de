"""Scoring customers: churn and purchase propensity, and cluster assignment.

    python bench/model_scoring.py                                # 100,000 customers, 1,000,000 events
    python bench/model_scoring.py --customers 1000000 --events 10000000

Runs in its own database (``jl_bench_scoring``, created and migrated on first use; the
population is generated in SQL as in bench/segment_recompute.py and kept between runs of
the same size). The models are the production pipelines (calibrated gradient boosting;
standardised K-Means) fitted on a sample of ``--train-sample`` customers with real labels
from the following 30 days: training on everyone is not what is measured here.

For each model it prints customers scored per second through the service
(``customers_score`` / ``clusters_assign``: feature query, prediction, upsert, a chunk of
ids at a time), the CPU it took (this process and the PostgreSQL backend), and the peak
memory this process grew by while scoring (VmHWM, reset before each step); against two floors measured in the same run on the
same customers: the feature query alone, and the bare ``predict_proba`` / ``predict`` on the
whole feature matrix in memory. ``--all-at-once`` scores clusters the way it was done
before chunking (every customer's features in memory at once), for the memory figure.
"""

import argparse
import datetime as dt
import io
import os
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")

from support import setup_database  # noqa: E402

DATABASE = "jl_bench_scoring"
NOW = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)


def population_size() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM customers_customer), (SELECT count(*) FROM customers_event)"
        )
        return cursor.fetchone()


def _peak_reset() -> None:
    """Reset this process's peak resident memory (Linux: VmHWM)."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


def _peak_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _run_time(pid: int) -> float:
    """Seconds of CPU a process on this machine has run (0 when the server is remote)."""
    try:
        with open(f"/proc/{pid}/schedstat") as stat:
            return int(stat.read().split()[0]) / 1e9
    except OSError:
        return 0.0


class Measured:
    """Wall time, CPU of this process and of the database backend, peak memory."""

    def __init__(self, backend: int) -> None:
        self.backend = backend

    def __enter__(self) -> "Measured":
        import gc

        gc.collect()
        _peak_reset()
        self.base_mb = _peak_mb()
        self.wall, self.cpu, self.server = (
            time.perf_counter(),
            time.process_time(),
            _run_time(self.backend),
        )
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.server = _run_time(self.backend) - self.server
        self.peak_mb = _peak_mb()

    def line(self, label: str, customers: int) -> str:
        return (
            f"  {label:<22}: {customers / self.wall:>10,.0f} customers/s  "
            f"CPU {1e6 * (self.cpu + self.server) / customers:6.1f} µs/customer "
            f"(this process {1e6 * self.cpu / customers:.1f} + backend {1e6 * self.server / customers:.1f})  "
            f"peak memory +{self.peak_mb - self.base_mb:6.1f} MB"
        )


def fit_models(sample: int) -> None:
    """Fit and activate churn, purchase and clusters models on a sample of customers."""
    import joblib
    import numpy as np
    from django.db import connection, transaction
    from sklearn.cluster import KMeans
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from segments.ml.features import customer_features, frequent_event_names, labels
    from segments.ml.training import THREADS, _pipeline, model_version_store
    from segments.models import ModelVersion

    as_of = NOW - dt.timedelta(days=30)
    event_names = frequent_event_names(as_of=as_of)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.5)")
        cursor.execute("SELECT id FROM customers_customer ORDER BY random() LIMIT %s", [sample])
        ids = [row[0] for row in cursor.fetchall()]
    features = customer_features(as_of=as_of, event_names=event_names, customer_ids=ids)
    fitted = {}
    with threadpool_limits(THREADS):
        for kind in ("churn", "purchase"):
            target = labels(
                kind=kind, customer_ids=features.customer_ids, start=as_of, horizon_days=30
            )
            fitted[kind] = _pipeline(0).fit(features.values, target)
        fitted["clusters"] = Pipeline(
            [("scale", StandardScaler()), ("model", KMeans(n_clusters=4, n_init=4, random_state=0))]
        ).fit(features.values)
    with transaction.atomic():
        ModelVersion.objects.all().delete()
        for kind, pipeline in fitted.items():
            buffer = io.BytesIO()
            joblib.dump(pipeline, buffer)
            model_version_store(
                kind=kind,
                activate=True,
                parameters={"event_names": event_names, "bench_sample": sample},
                features=features.names,
                metrics={"clusters": []} if kind == "clusters" else {},
                trained_at=NOW,
                artefact=buffer.getvalue(),
            )
    assert len(np.unique(fitted["clusters"].predict(features.values))) > 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--train-sample", type=int, default=5_000)
    parser.add_argument("--chunk", type=int, default=20_000, help="customer ids per chunk")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--no-migrate", action="store_true")
    parser.add_argument(
        "--all-at-once",
        action="store_true",
        help="also assign clusters with every customer's features in memory at once",
    )
    args = parser.parse_args()
    print("command: python " + " ".join(sys.argv))
    setup_database(DATABASE, migrate=not args.no_migrate)

    import numpy as np
    from django.db import connection
    from segment_recompute import generate
    from threadpoolctl import threadpool_limits

    from segments.ml.clusters import clusters_assign
    from segments.ml.features import customer_features
    from segments.ml.training import THREADS, customer_id_ranges, customers_score, model_load
    from segments.models import CustomerCluster, CustomerScore, ModelVersion

    if args.regenerate or population_size() != (args.customers, args.events):
        started = time.perf_counter()
        generate(args.customers, args.events, NOW)
        print(
            f"generated {args.customers:,} customers and {args.events:,} events "
            f"in {time.perf_counter() - started:.1f} s"
        )
    started = time.perf_counter()
    fit_models(args.train_sample)
    print(
        f"fitted churn, purchase and clusters on {args.train_sample:,} customers "
        f"in {time.perf_counter() - started:.1f} s"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    customers = population_size()[0]
    print(f"\n{customers:,} customers, {args.events:,} events, chunks of {args.chunk:,} ids")

    models = {model.kind: model for model in ModelVersion.objects.filter(is_active=True)}
    event_names = models["churn"].parameters["event_names"]

    # Floor 1: the feature query alone, chunk by chunk, nothing kept.
    with Measured(backend) as features_only:
        for ids in customer_id_ranges(chunk_size=args.chunk):
            customer_features(as_of=NOW, event_names=event_names, customer_ids=ids)
    # Floor 2: the bare prediction on the whole feature matrix, already in memory.
    matrix = np.concatenate(
        [
            customer_features(as_of=NOW, event_names=event_names, customer_ids=ids).values
            for ids in customer_id_ranges(chunk_size=args.chunk)
        ]
    )
    floors = {}
    for kind in ("churn", "purchase", "clusters"):
        pipeline = model_load(models[kind])
        with threadpool_limits(THREADS), Measured(backend) as bare:
            if kind == "clusters":
                pipeline.predict(matrix)
            else:
                pipeline.predict_proba(matrix)
        floors[kind] = bare
    del matrix

    for kind in ("churn", "purchase"):
        with Measured(backend) as service:
            scored = customers_score(kind=kind, now=NOW, chunk_size=args.chunk)
        assert scored == CustomerScore.objects.filter(kind=kind).count() == customers
        print(f"\n{kind} propensity (customers_score)")
        print(service.line("scored through service", scored))
        print(features_only.line("floor: feature query", customers))
        print(floors[kind].line("floor: predict_proba", customers))
        print(
            f"  ratio                 : {service.wall / (features_only.wall + floors[kind].wall):8.2f} "
            "(service / (feature query + predict_proba))"
        )

    with Measured(backend) as service:
        assigned = clusters_assign(now=NOW, chunk_size=args.chunk)
    assert assigned == CustomerCluster.objects.count() == customers
    print("\nclusters (clusters_assign)")
    print(service.line("assigned through service", assigned))
    if args.all_at_once:
        with Measured(backend) as at_once:
            clusters_assign(now=NOW, chunk_size=customers * 10)
        print(at_once.line("all at once (before)", assigned))
    print(features_only.line("floor: feature query", customers))
    print(floors["clusters"].line("floor: predict", customers))
    print(
        f"  ratio                 : {service.wall / (features_only.wall + floors['clusters'].wall):8.2f} "
        "(service / (feature query + predict))"
    )


if __name__ == "__main__":
    main()
