"""Consent changes move the segments whose rules have a consent condition, for that one
customer, as soon as the change is committed (the schedule recomputes them too, which
covers bulk imports and a lost re-evaluation)."""

import datetime as dt

from segments.rules import rule_dependencies
from segments.services.index import segment_index
from segments.services.memberships import MembershipChanges, segments_reevaluate


def segments_reevaluate_consent_change(
    *, customer_id: int, topic_key: str | None, now: dt.datetime | None = None
) -> MembershipChanges:
    """Re-evaluate for one customer the segments reading consent to ``topic_key`` (every
    consent segment when ``topic_key`` is None: a channel-wide change)."""
    index = segment_index()
    segment_ids = set()
    for pk, segment in index.segments.items():
        topics = rule_dependencies(segment.rules).consent_topics
        if topics and (topic_key is None or topic_key in topics):
            segment_ids.add(pk)
    if not segment_ids:
        return MembershipChanges()
    return segments_reevaluate(customer_ids=[customer_id], segment_ids=segment_ids, now=now)
