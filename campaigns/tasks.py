"""Thin Celery tasks: ids in, a service call, nothing else."""

from celery import shared_task

from campaigns.services.broadcasts import (
    campaign_send,
    campaign_snapshot_finish,
    campaigns_tick,
)
from campaigns.services.dispatch import messages_dispatch, messages_tick


@shared_task(name="campaigns.dispatch", ignore_result=True)
def messages_dispatch_task(message_ids: list[int]) -> None:
    messages_dispatch(message_ids=message_ids)


@shared_task(name="campaigns.dispatch_tick", ignore_result=True)
def messages_tick_task() -> None:
    messages_tick()


@shared_task(name="campaigns.campaign_send", ignore_result=True)
def campaign_send_task(campaign_id: int) -> None:
    campaign_send(campaign_id=campaign_id, actor="schedule")


@shared_task(name="campaigns.campaign_snapshot", ignore_result=True)
def campaign_snapshot_task(campaign_id: int) -> None:
    campaign_snapshot_finish(campaign_id=campaign_id, actor="snapshot task")


@shared_task(name="campaigns.campaigns_tick", ignore_result=True)
def campaigns_tick_task() -> None:
    campaigns_tick()
