"""Consent changes move the segments whose rules have a consent condition, for that one
customer, as soon as the change is committed (the schedule recomputes them too, which
covers bulk imports and a lost re-evaluation)."""

import datetime as dt
import logging
from functools import partial

from django.db import transaction

from segments.rules import rule_dependencies
from segments.services.index import segment_index
from segments.services.memberships import segments_reevaluate

logger = logging.getLogger(__name__)


def consent_segment_ids(*, topic_key: str | None) -> set[int]:
    """The dynamic segments reading consent to ``topic_key`` (every consent segment when
    ``topic_key`` is None: a channel-wide change)."""
    found = set()
    for pk, segment in segment_index().segments.items():
        topics = rule_dependencies(segment.rules).consent_topics
        if topics and (topic_key is None or topic_key in topics):
            found.add(pk)
    return found


def segments_reevaluate_consent_change(
    *, customer_id: int, topic_key: str | None, now: dt.datetime | None = None
) -> None:
    """Once the consent change commits, re-evaluate that customer's consent segments.

    After commit, because the ledger row is saved before consent derives the state from
    it; nothing is registered when no segment reads that topic's consent.
    """
    try:
        # A savepoint: an error here must not abort the consent transaction either.
        with transaction.atomic():
            segment_ids = consent_segment_ids(topic_key=topic_key)
    except Exception:
        # A consent change (an unsubscribe) must never fail because of segments: the
        # schedule recomputes consent segments anyway.
        logger.exception("consent segments not looked up", extra={"customer_id": customer_id})
        return
    if segment_ids:
        # Robust: a failed re-evaluation is logged, and the committed change stands.
        transaction.on_commit(
            partial(
                segments_reevaluate, customer_ids=[customer_id], segment_ids=segment_ids, now=now
            ),
            robust=True,
        )
