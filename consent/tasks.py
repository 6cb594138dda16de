from celery import shared_task
from django.conf import settings

from consent.services.privacy import events_purge


@shared_task(name="consent.events_purge")
def events_purge_task() -> int:
    """Beat: delete customer events older than CONSENT_EVENT_RETENTION_DAYS."""
    return events_purge(older_than_days=settings.CONSENT_EVENT_RETENTION_DAYS)
