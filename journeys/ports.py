"""Narrow interfaces to the apps journeys builds on, filled in by those apps (or tests).

- Conditions: how a condition step's rule is validated and evaluated.
  ``JourneysConfig.ready()`` registers ``journeys.segment_conditions.SegmentRuleConditions``
  (the segment rule language plus trigger-payload conditions); the default, used by the
  pure engine alone, is journeys' own ``BasicConditions``.
- Templates: which channel a message template belongs to, for validation before publish.
  The default reads ``campaigns.models.MessageTemplate``.
- Outbox: where send and webhook effects become message rows: campaigns'
  ``JourneyOutbox``, registered in ``JourneysConfig.ready()`` (campaigns cannot import
  journeys). With none registered, an enrolment reaching a send step fails with the reason
  rather than pretending to send.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured

from journeys.engine.conditions import BasicConditions


class ConditionEvaluator(Protocol):
    def validate(self, rule: Any, field: str = "rule") -> list[tuple[str, str]]: ...

    def evaluate(self, rule: dict, *, facts, payload: dict, now) -> bool: ...


class TemplateCatalog(Protocol):
    def channel_of(self, template_id: Any) -> str | None:
        """The channel of this template, or ``None`` when there is no such template."""


@dataclass(frozen=True)
class OutboundMessage:
    """One message a journey wants sent; ``idempotency_key`` is unique per enrolment,
    step and visit, so applying the same effect twice must store one row."""

    idempotency_key: str
    customer_id: int
    enrolment_id: int
    journey_id: int
    step_id: str
    channel: str
    template_id: Any
    topic: str
    context: dict
    webhook: dict | None = None


class Outbox(Protocol):
    def enqueue(self, messages: Sequence[OutboundMessage]) -> None:
        """Store the messages as outbox rows inside the caller's transaction; a key
        already stored is skipped (the same effect applied twice stores one row)."""

    def dispatch(self, idempotency_keys: Sequence[str]) -> None:
        """Hand the stored messages to the dispatch tasks. The runner calls it from
        ``transaction.on_commit`` only, so nothing is sent for a rolled-back move."""


class OutboxNotConfigured(ImproperlyConfigured):
    pass


class CampaignTemplates:
    def channel_of(self, template_id: Any) -> str | None:
        from campaigns.models import MessageTemplate

        if not isinstance(template_id, int) or isinstance(template_id, bool):
            return None
        return (
            MessageTemplate.objects.filter(pk=template_id).values_list("channel", flat=True).first()
        )


class _Ports:
    def __init__(self) -> None:
        self.conditions: ConditionEvaluator = BasicConditions()
        self.templates: TemplateCatalog = CampaignTemplates()
        self._outbox: Outbox | None = None

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise OutboxNotConfigured(
                "journeys: no outbox is registered, so send steps cannot run "
                "(campaigns must call journeys.ports.register_outbox)"
            )
        return self._outbox


ports = _Ports()


def register_condition_evaluator(evaluator: ConditionEvaluator) -> None:
    ports.conditions = evaluator


def register_template_catalog(catalog: TemplateCatalog) -> None:
    ports.templates = catalog


def register_outbox(outbox: Outbox | None) -> None:
    ports._outbox = outbox
