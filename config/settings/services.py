"""PostgreSQL, Redis, Celery: external URLs, or the embedded servers under var/."""

import dj_database_url

from config import embedded
from config.env import env_bool, env_int, env_str

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    DATABASES = {"default": {**embedded.postgres_settings(), "CONN_MAX_AGE": 60}}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The per-event segment statements are prepared on the server (segments/services/prepared.py);
# turn off behind a pooler in transaction mode that cannot keep them (PgBouncer < 1.21).
SEGMENTS_PREPARED_STATEMENTS = env_bool("SEGMENTS_PREPARED_STATEMENTS", True)
# The same for the ingest statements (customers.services.prepared).
INGEST_PREPARED_STATEMENTS = env_bool("INGEST_PREPARED_STATEMENTS", True)
# The same for dispatch's per-batch statements (claim, outcomes, status history, send log).
DISPATCH_PREPARED_STATEMENTS = env_bool("DISPATCH_PREPARED_STATEMENTS", True)

REDIS_URL = env_str("REDIS_URL") or embedded.redis_url()

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "journeyline",
    }
}


def _celery_broker(url: str) -> str:
    # kombu spells a Unix socket Redis URL redis+socket:///path
    if url.startswith("unix://"):
        return "redis+socket://" + url.removeprefix("unix://")
    return url


CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or _celery_broker(REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 4
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A publish must not hang a web request when Redis is down: the sweeper covers the gap.
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_PUBLISH_RETRY = False
# Queues per concern, so a backlog of one kind of work is visible and does not starve another.
# A broadcast's thousands of dispatch tasks wait in "dispatch", consumed by workers of
# their own, so ingest hand-overs and journeys ("ingest", "celery") never queue behind them.
CELERY_TASK_ROUTES = {
    "customers.*": {"queue": "ingest"},
    "campaigns.dispatch": {"queue": "dispatch"},
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = False

# Concurrent ingest requests of one web process share a transaction (see group_commit).
INGEST_GROUP_COMMIT = env_bool("INGEST_GROUP_COMMIT", default=True)

# Events acknowledged but not yet handed to the reactors for this long are re-enqueued.
INGEST_SWEEP_AFTER_SECONDS = env_int("INGEST_SWEEP_AFTER_SECONDS", 30)

CELERY_BEAT_SCHEDULE = {
    "customers.events_sweep": {"task": "customers.events_sweep", "schedule": 10.0},
    # Journey waits that have come due (rows with wake_at, never Celery countdowns).
    "journeys.tick": {"task": "journeys.tick", "schedule": env_int("JOURNEYS_TICK_SECONDS", 2)},
    # Deferred messages that are due, queued ones whose task was lost, dead sends.
    "campaigns.dispatch_tick": {
        "task": "campaigns.dispatch_tick",
        "schedule": env_int("DISPATCH_TICK_SECONDS", 5),
    },
    # Broadcasts: scheduled starts, finished campaigns, A/B winners after the test window.
    "campaigns.campaigns_tick": {"task": "campaigns.campaigns_tick", "schedule": 30.0},
    # Date-trait triggers (birthdays, renewals): idempotent per day, so hourly is safe.
    "journeys.date_triggers": {"task": "journeys.date_triggers", "schedule": 3600.0},
    # Segments whose rules depend on time passing (windows, relative dates, anniversaries).
    "segments.recompute_time_dependent": {
        "task": "segments.recompute_time_dependent",
        "schedule": env_int("SEGMENTS_TIME_RECOMPUTE_SECONDS", 900),
    },
    # Propensity models: retrained weekly on a time-based split, customers scored daily.
    "segments.models_train": {
        "task": "segments.models_train",
        "schedule": env_int("SEGMENTS_MODEL_TRAIN_SECONDS", 7 * 24 * 3600),
    },
    "segments.models_score": {
        "task": "segments.models_score",
        "schedule": env_int("SEGMENTS_MODEL_SCORE_SECONDS", 24 * 3600),
    },
    # Retention: customer events older than CONSENT_EVENT_RETENTION_DAYS are deleted.
    "consent.events_purge": {"task": "consent.events_purge", "schedule": 3600.0},
}

# Parallel test runs on one server (several developers, or CI beside a demo) need their
# own test database.
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "test_journeyline")}
