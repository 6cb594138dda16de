"""What customers change on their own pages: several ledger rows, one transaction."""

from __future__ import annotations

from django.db import transaction

from consent.models import Action, Channel, ConsentEvent
from consent.selectors import consent_overview
from consent.services.ledger import consent_record


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
        for channel in (channels or Channel.values)
    ]
