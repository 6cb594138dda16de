"""Gauges of the customers app for /metrics. Cheap queries only: they run on every scrape."""

import redis
from django.conf import settings
from django.db import connection


def estimated_rows(table: str) -> float:
    # The planner's estimate: exact counts of large tables cost a full scan.
    with connection.cursor() as cursor:
        cursor.execute("SELECT GREATEST(reltuples, 0) FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
    return row[0] if row else 0


def events_waiting_for_hand_over() -> float:
    with connection.cursor() as cursor:
        # Served by the partial index event_not_handed_over.
        cursor.execute("SELECT count(*) FROM customers_event WHERE handed_over_at IS NULL")
        return cursor.fetchone()[0]


def celery_queue_lengths() -> dict:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
    try:
        return {(("queue", "celery"),): client.llen("celery")}
    except redis.RedisError:
        return {}


def register() -> None:
    from config.metrics import register_gauge

    register_gauge(
        "journeyline_customers", "Customer profiles (estimate)",
        lambda: estimated_rows("customers_customer"),
    )  # fmt: skip
    register_gauge(
        "journeyline_events", "Stored events (estimate)", lambda: estimated_rows("customers_event")
    )
    register_gauge(
        "journeyline_events_not_handed_over",
        "Events acknowledged but not yet handed to the reactors",
        events_waiting_for_hand_over,
    )
    register_gauge("journeyline_queue_length", "Tasks waiting in the broker", celery_queue_lengths)
