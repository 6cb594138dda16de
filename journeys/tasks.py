from celery import shared_task

from journeys.services.tick import enrolments_due_tick


@shared_task(name="journeys.tick", ignore_result=True)
def journeys_tick_task() -> int:
    return enrolments_due_tick()


@shared_task(name="journeys.date_triggers", ignore_result=True)
def journeys_date_triggers_task() -> int:
    from journeys.services.date_triggers import date_triggers_run

    return date_triggers_run()
