from celery import shared_task

from journeys.services.tick import enrolments_due_tick


@shared_task(name="journeys.tick", ignore_result=True)
def journeys_tick_task() -> int:
    return enrolments_due_tick()
