"""What consent does with ingested messages: identify calls may carry consent.

See consent/services/identify.py for the format. The structure is checked while the
ingest validates (a 400 before anything is stored); the changes are recorded when the
event is handed over, in the hand-over's transaction, so each is recorded once.
"""

import logging

from consent.services.identify import consent_from_identify, identify_consent_parse
from consent.services.ledger import ConsentError

logger = logging.getLogger(__name__)


def validate_identify(message_type: str, raw: dict) -> list[tuple[str, str]]:
    if message_type != "identify":
        return []
    try:
        identify_consent_parse(raw)
    except ConsentError as error:
        return [(error.field, error.message)]
    return []


def on_events(events) -> None:
    for event in events:
        if event.type != "identify" or "consent" not in (event.context or {}):
            continue
        try:
            consent_from_identify(
                customer_id=event.customer_id,
                message={"context": event.context, "messageId": event.message_id},
                timestamp=event.timestamp,
            )
        except ConsentError as error:
            # An unknown topic key, say: the event stays stored, the consent is not taken.
            logger.warning(
                "identify consent not recorded",
                extra={"event_id": event.pk, "field": error.field, "reason": error.message},
            )
