"""What customers change on their own pages: several ledger rows, one transaction."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from consent.channels import CONSENT_CHANNELS
from consent.models import Action, ConsentEvent, Source
from consent.selectors import consent_overview
from consent.services.ledger import ConsentError, consent_record


@transaction.atomic
def preferences_save(
    *, customer_id: int, wanted: set[tuple[str, str]], source: str, evidence: dict
) -> list[ConsentEvent]:
    """Record a grant or a withdrawal for each topic whose box changed; nothing else."""
    events = []
    for channel in consent_overview(customer_id=customer_id):
        for preference in channel.topics:
            want = (preference.channel, preference.topic.key) in wanted
            if want == preference.subscribed:
                continue
            events.append(
                consent_record(
                    customer_id=customer_id,
                    channel=preference.channel,
                    topic_key=preference.topic.key,
                    action=Action.GRANT if want else Action.WITHDRAW,
                    source=source,
                    evidence=evidence,
                )
            )
    return events


@transaction.atomic
def consent_withdraw_everything(
    *, customer_id: int, source: str, evidence: dict, channels: list[str] | None = None
) -> list[ConsentEvent]:
    """ "Unsubscribe from everything": one channel-wide withdrawal per channel."""
    return [
        consent_record(
            customer_id=customer_id,
            channel=channel,
            topic_key=None,
            action=Action.WITHDRAW,
            source=source,
            evidence=evidence,
        )
        for channel in (channels or CONSENT_CHANNELS)
    ]


@transaction.atomic
def consent_set(
    *,
    customer_id: int,
    changes: list[tuple[str, str | None, bool]],
    evidence: dict,
    actor: str = "",
    source: str = Source.API,
    occurred_at: dt.datetime | None = None,
) -> list[ConsentEvent]:
    """Set (channel, topic or None for all, granted?) for a customer; record only what
    differs from the current state. All or nothing."""
    overview = consent_overview(customer_id=customer_id)
    current = {
        (preference.channel, preference.topic.key): preference.subscribed
        for channel in overview
        for preference in channel.topics
    }
    withdrawn_all = {channel.channel for channel in overview if channel.withdrawn_all}
    events = []
    for index, (channel, topic_key, granted) in enumerate(changes):
        if topic_key is None:
            if granted == (channel not in withdrawn_all):
                continue
        elif current.get((channel, topic_key)) == granted:
            continue
        try:
            event = consent_record(
                customer_id=customer_id,
                channel=channel,
                topic_key=topic_key,
                action=Action.GRANT if granted else Action.WITHDRAW,
                source=source,
                evidence=evidence,
                actor=actor,
                occurred_at=occurred_at,
            )
        except ConsentError as error:
            # Which change was at fault: the whole set is rolled back.
            raise ConsentError(f"{index}.{error.field}", error.message) from None
        events.append(event)
    return events
