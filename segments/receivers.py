"""Receivers of the customers and consent apps' signals: thin, they call services.

A profile change is re-evaluated right away, inside the writing transaction: for one
customer it costs a few queries, and nothing is left for a broker to lose.
"""

from segments.services.consent_changes import segments_reevaluate_consent_change
from segments.services.memberships import (
    segment_memberships_forget,
    segments_reevaluate_profile_change,
)


def on_customer_merged(sender, *, source_id: int, target_id: int, **kwargs) -> None:
    segment_memberships_forget(customer_id=source_id)


def on_customer_profile_changed(sender, *, customer_id: int, fields: list[str], **kwargs) -> None:
    segments_reevaluate_profile_change(customer_id=customer_id, fields=fields)


def on_consent_recorded(sender, *, instance, created: bool, **kwargs) -> None:
    if created:
        segments_reevaluate_consent_change(
            customer_id=instance.customer_id,
            topic_key=instance.topic.key if instance.topic_id else None,
        )
