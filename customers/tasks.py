from celery import shared_task

from customers.services.handover import events_hand_over_queued, events_sweep


@shared_task(name="customers.events_hand_over", acks_late=True)
def events_hand_over_task(event_ids: list[int]) -> int:
    return events_hand_over_queued(event_ids=event_ids)


@shared_task(name="customers.events_sweep")
def events_sweep_task() -> int:
    return events_sweep()
