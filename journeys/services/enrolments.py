"""Entering a journey, leaving it, and reaching its goal."""

import datetime as dt
from decimal import Decimal

from django.db import IntegrityError, transaction

from customers.models import Customer
from journeys import clock
from journeys.engine import Enrol, ExitRequested
from journeys.engine.core import State, Status, split_draw
from journeys.models import Enrolment, Journey
from journeys.services.runner import enrolment_record, enrolments_advance


class EnrolmentRefused(Exception):
    """The customer may not enter now; ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


def journey_enrol(
    *,
    journey: Journey,
    customer: Customer,
    payload: dict | None = None,
    now: dt.datetime | None = None,
    actor: str = "api",
) -> Enrolment:
    """Enter the customer in the journey's live version and run it to its first wait.

    Raises ``EnrolmentRefused`` when the journey is not live or its entry policy says no.
    """
    now = now or clock.now()
    payload = payload or {}
    try:
        with transaction.atomic():
            # One customer's entries into journeys are decided one at a time.
            Customer.objects.select_for_update().filter(pk=customer.pk).exists()
            journey = Journey.objects.select_related("live_version").get(pk=journey.pk)
            _check_entry(journey=journey, customer=customer, now=now)
            enrolment = Enrolment.objects.create(
                journey=journey,
                version=journey.live_version,
                customer=customer,
                entered_at=now,
                trigger_payload=payload,
                state={},
            )
            enrolment.customer = customer
            enrolment.state = State(
                str(enrolment.pk), seed=split_seed(journey_id=journey.pk, customer_id=customer.pk)
            ).to_json()
            if _held_out(journey, enrolment):
                enrolment.holdout = True
                enrolment.status = Status.EXITED
                enrolment.finished_at = now
                enrolment.save(update_fields=["holdout", "status", "finished_at", "state"])
                enrolment_record(enrolment=enrolment, reason="holdout", now=now, actor=actor)
                return enrolment
            enrolments_advance(
                items=[(enrolment, Enrol(payload, timezone=customer.timezone))],
                now=now,
                actor=actor,
            )
            return enrolment
    except IntegrityError as error:
        if "enrolment_once_at_a_time" in str(error):
            raise EnrolmentRefused("already_enrolled", "the customer is in this journey") from None
        raise


def split_seed(*, journey_id: int, customer_id: int) -> str:
    return f"journey-{journey_id}-customer-{customer_id}"


def _held_out(journey: Journey, enrolment: Enrolment) -> bool:
    share = Decimal(journey.holdout_share)
    return share > 0 and Decimal(split_draw(str(enrolment.pk), "journey-holdout", 1)) < share


def _check_entry(*, journey: Journey, customer: Customer, now: dt.datetime) -> None:
    if journey.status != Journey.Status.LIVE or journey.live_version is None:
        raise EnrolmentRefused("not_live", f"the journey is {journey.status}, not live")
    previous = list(
        Enrolment.objects.filter(journey=journey, customer=customer)
        .order_by("-entered_at")
        .values_list("status", "entered_at")[:1]
    )
    if not previous:
        return
    status, entered_at = previous[0]
    if status in Enrolment.RUNNING:
        raise EnrolmentRefused("already_enrolled", "the customer is in this journey")
    if journey.entry_policy == Journey.EntryPolicy.ONCE:
        raise EnrolmentRefused("entered_before", "this journey is entered once per customer")
    recently = now - dt.timedelta(days=journey.entry_period_days or 0)
    if journey.entry_policy == Journey.EntryPolicy.ONCE_PER_PERIOD and entered_at > recently:
        raise EnrolmentRefused(
            "entered_recently",
            f"this journey is entered once per {journey.entry_period_days} days",
        )


def enrolments_exit(
    *, enrolments: list[Enrolment], reason: str, now: dt.datetime, actor: str, converted=False
) -> int:
    """End running (locked) enrolments, whatever step they are at, waits included."""
    return enrolments_advance(
        items=[(enrolment, ExitRequested(reason, converted=converted)) for enrolment in enrolments],
        now=now,
        actor=actor,
    )
