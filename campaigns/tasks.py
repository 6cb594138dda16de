"""Thin Celery tasks: ids in, a service call, nothing else."""

from celery import shared_task

from campaigns.services.dispatch import messages_dispatch, messages_tick


@shared_task(name="campaigns.dispatch", ignore_result=True)
def messages_dispatch_task(message_ids: list[int]) -> None:
    messages_dispatch(message_ids=message_ids)


@shared_task(name="campaigns.dispatch_tick", ignore_result=True)
def messages_tick_task() -> None:
    messages_tick()
