"""Receivers of the customers app's signals: thin, they call services.

A profile change is re-evaluated right away, inside the writing transaction: for one
customer it costs a few queries, and nothing is left for a broker to lose.
"""

from functools import partial

from django.db import transaction

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
    # After commit: the ledger row is saved before consent derives the state from it.
    if created:
        transaction.on_commit(
            partial(
                segments_reevaluate_consent_change,
                customer_id=instance.customer_id,
                topic_key=instance.topic.key if instance.topic_id else None,
            )
        )
