"""The messages' part of a customer's export and erasure (consent.hooks registries)."""

from django.db import transaction

from campaigns.models import Message, MessageStatusChange


def messages_export(*, customer_id: int) -> list[dict]:
    messages = (
        Message.objects.filter(customer_id=customer_id)
        .select_related("template_version__template")
        .prefetch_related("status_changes")
        .order_by("created_at", "pk")
    )
    return [
        {
            "id": message.pk,
            "channel": message.channel,
            "template": message.template_version.template.name,
            "template_version": message.template_version.number,
            "topic": message.topic_key,
            "origin": message.origin,
            "status": message.status,
            "subject": message.subject,
            "consent_decision": message.decision,
            "created_at": message.created_at.isoformat(),
            "sent_at": message.sent_at.isoformat() if message.sent_at else None,
            "status_history": [
                {
                    "from": change.from_status,
                    "to": change.to_status,
                    "reason": change.reason,
                    "at": change.created_at.isoformat(),
                }
                for change in message.status_changes.all()
            ],
        }
        for message in messages
    ]


@transaction.atomic
def messages_erase(*, customer_id: int) -> int:
    """Strip what a message may hold of the person (render context, subject, provider
    text); keep the row and its history as the record that it was sent and why."""
    messages = Message.objects.filter(customer_id=customer_id)
    MessageStatusChange.objects.filter(message__customer_id=customer_id).update(reason="", data={})
    return messages.update(context={}, subject="", failure_reason="")
