"""Thin receivers of other apps' signals: they call a service and nothing else."""

from consent.services.ledger import consent_states_repoint


def on_customer_merged(sender, *, source_id: int, target_id: int, **kwargs) -> None:
    consent_states_repoint(source_id=source_id, target_id=target_id)
