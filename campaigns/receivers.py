"""Thin receivers: they call a service and nothing else."""

from campaigns.services.feedback import anymail_event_record


def on_anymail_tracking(sender, *, event, esp_name: str, **kwargs) -> None:
    anymail_event_record(event=event, esp_name=esp_name)
