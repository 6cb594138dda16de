"""A small population with real structure: engaged customers keep coming back, and
customers who stopped stay away, so activity now predicts activity next month."""

import datetime as dt
import random

from customers.models import Customer, Event

NAMES = ["Page Viewed", "Order Completed", "Email Opened"]


def generate(
    *, now: dt.datetime, customers: int = 240, days: int = 120, seed: int = 7
) -> list[int]:
    rng = random.Random(seed)
    start = now - dt.timedelta(days=days)
    profiles = Customer.objects.bulk_create(
        Customer(
            external_id=f"ml-{number}",
            first_seen=start + dt.timedelta(days=rng.randint(0, 20)),
            last_seen=now,
        )
        for number in range(customers)
    )
    events = []
    for profile in profiles:
        rate = rng.choice([0.05, 0.15, 0.4, 0.7])
        # Half of them stop at some point, before or after now.
        stop = start + dt.timedelta(days=rng.uniform(0, days + 60)) if rng.random() < 0.5 else None
        day = profile.first_seen
        while day < now:
            if (stop is None or day < stop) and rng.random() < rate:
                name = rng.choices(NAMES, weights=[6, 1, 3])[0]
                properties = {"revenue": rng.randint(5, 200)} if name == "Order Completed" else {}
                events.append(
                    Event(
                        customer=profile,
                        type="track",
                        name=name,
                        properties=properties,
                        timestamp=day + dt.timedelta(hours=rng.randint(0, 23)),
                        message_id=f"ml-{profile.pk}-{len(events)}",
                    )
                )
            day += dt.timedelta(days=1)
    Event.objects.bulk_create(events, batch_size=5000)
    return [profile.pk for profile in profiles]
