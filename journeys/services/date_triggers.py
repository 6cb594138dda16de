"""Date-trait triggers: enter customers N days before or after a date in their traits
(a renewal date, or every year for a birthday with ``"annual": true``).

A beat task runs it a few times a day; a customer enters a journey at most once per day
by it, whatever the entry policy allows, so running it again the same day is harmless.
"""

import datetime as dt
import itertools
import logging

from django.db.models import DateField, Q
from django.db.models.expressions import RawSQL

from customers.models import Customer
from journeys import clock
from journeys.engine.graph import entry_step, normalize_graph
from journeys.models import Enrolment, Journey
from journeys.services.enrolments import EnrolmentRefused, Entry, journeys_enrol_many

logger = logging.getLogger(__name__)

# The trait must hold an ISO date (anything after the first ten characters is ignored).
_DATE_OF_TRAIT = (
    "CASE WHEN (traits ->> %s) ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' "
    "THEN substring(traits ->> %s, 1, 10)::date END"
)


def date_triggers_run(*, now: dt.datetime | None = None) -> int:
    """Enrol everyone whose trait date (plus the offset) is today; return how many."""
    now = now or clock.now()
    today = now.date()
    started = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)
    entered = 0
    journeys = Journey.objects.filter(status=Journey.Status.LIVE).select_related("live_version")
    for journey in journeys:
        trigger = entry_step(normalize_graph(journey.live_version.graph))["config"]
        if trigger.get("type") != "date_trait":
            continue
        # offset_days -3 means three days before the date: the date is today + 3.
        target = today - dt.timedelta(days=trigger["offset_days"])
        trait = trigger["trait"]
        # The trait name is a bound parameter, never spliced into the SQL text.
        dates = Customer.objects.annotate(
            trait_date=RawSQL(_DATE_OF_TRAIT, (trait, trait), output_field=DateField())  # noqa: S611
        )
        if trigger.get("annual"):
            matching = dates.filter(trait_date__month=target.month, trait_date__day=target.day)
            if target.month == 2 and target.day == 28 and not _is_leap(target.year):
                # Born on 29 February: celebrated on the 28th in other years.
                matching = dates.filter(Q(trait_date__month=2) & Q(trait_date__day__in=[28, 29]))
        else:
            matching = dates.filter(trait_date=target)
        already = Enrolment.objects.filter(journey=journey, entered_at__gte=started).values(
            "customer_id"
        )
        customers = matching.exclude(pk__in=already).order_by("pk").iterator(chunk_size=500)
        while chunk := list(itertools.islice(customers, 500)):
            outcomes = journeys_enrol_many(
                entries=[
                    Entry(
                        journey_id=journey.pk,
                        customer=customer,
                        payload={"trait": trait, "date": str(customer.trait_date)},
                    )
                    for customer in chunk
                ],
                now=now,
                actor="date",
            )
            for customer, outcome in zip(chunk, outcomes, strict=True):
                if isinstance(outcome, EnrolmentRefused):
                    logger.debug(
                        "date trigger entry refused",
                        extra={
                            "journey_id": journey.pk,
                            "customer_id": customer.pk,
                            "code": outcome.code,
                        },
                    )
                else:
                    entered += 1
    return entered


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
