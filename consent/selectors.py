"""Read queries of the consent app."""

from __future__ import annotations

from dataclasses import dataclass

from consent.channels import CONSENT_CHANNEL_CHOICES
from consent.gate import ALLOWED, PENDING_CONFIRMATION, RecordedState, effective_status
from consent.models import ConsentState, PrivacyRequest, Topic
from consent.services.gate import topic_rule
from customers.models import Customer, CustomerMerge, Identity


@dataclass(frozen=True)
class TopicPreference:
    channel: str
    topic: Topic
    status: str  # allowed, no_consent, withdrawn, pending_confirmation

    @property
    def subscribed(self) -> bool:
        return self.status in (ALLOWED, PENDING_CONFIRMATION)

    @property
    def field_name(self) -> str:
        return f"{self.channel}:{self.topic.key}"


@dataclass(frozen=True)
class ChannelPreferences:
    channel: str
    label: str
    withdrawn_all: bool
    topics: list[TopicPreference]


def customer_live_id(*, customer_id: int) -> int | None:
    """The profile a (possibly merged-away) customer id lives on now, or None."""
    for _ in range(10):  # a chain of merges; bounded so a bad row cannot loop
        if Customer.objects.filter(pk=customer_id).exists():
            return customer_id
        merge = (
            CustomerMerge.objects.filter(merged_customer_id=customer_id)
            .order_by("-pk")
            .values_list("survivor_id", flat=True)
            .first()
        )
        if merge is None:
            return None
        customer_id = merge
    return None


def customer_by_external_id(*, external_id: str) -> Customer | None:
    """Through identities, so an id merged away by alias still finds its profile."""
    identity = (
        Identity.objects.select_related("customer")
        .filter(kind=Identity.Kind.USER_ID, value=external_id)
        .first()
    )
    if identity is not None:
        return identity.customer
    return Customer.objects.filter(external_id=external_id).first()


def customer_is_erased(*, customer_id: int) -> bool:
    return PrivacyRequest.objects.filter(
        kind=PrivacyRequest.Kind.ERASURE, customer_id=customer_id
    ).exists()


def consent_overview(*, customer_id: int) -> list[ChannelPreferences]:
    """Every non-transactional topic per channel with its effective state."""
    states = {
        (state.channel, state.topic_id): RecordedState(
            state.action, state.occurred_at, state.event_id
        )
        for state in ConsentState.objects.filter(customer_id=customer_id)
    }
    topics = list(Topic.objects.filter(is_transactional=False).order_by("name"))
    overview = []
    for channel, label in CONSENT_CHANNEL_CHOICES:
        channel_state = states.get((channel, None))
        overview.append(
            ChannelPreferences(
                channel=channel,
                label=str(label),
                withdrawn_all=channel_state is not None and channel_state.action == "withdraw",
                topics=[
                    TopicPreference(
                        channel=channel,
                        topic=topic,
                        status=effective_status(
                            topic=topic_rule(topic),
                            topic_state=states.get((channel, topic.pk)),
                            channel_state=channel_state,
                        ),
                    )
                    for topic in topics
                    if channel in topic.channels
                ],
            )
        )
    return overview
