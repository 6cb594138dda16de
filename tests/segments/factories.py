import datetime as dt

import factory

from customers.models import Customer, Device, Event
from segments.models import Segment

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"segments-user-{n}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    phone = ""
    timezone = "Europe/Amsterdam"
    locale = "en-GB"
    traits = factory.LazyFunction(dict)
    first_seen = NOW - dt.timedelta(days=100)
    last_seen = NOW - dt.timedelta(days=1)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    type = Event.Type.TRACK
    name = "Order Completed"
    properties = factory.LazyFunction(dict)
    timestamp = NOW - dt.timedelta(days=1)
    received_at = NOW
    message_id = factory.Sequence(lambda n: f"segments-message-{n}")
    # Already handed over: tests of reactors hand events over themselves.
    handed_over_at = NOW


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    customer = factory.SubFactory(CustomerFactory)
    platform = Device.Platform.IOS
    token = factory.Sequence(lambda n: f"segments-push-token-{n:08d}")


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    key = factory.Sequence(lambda n: f"segment-{n}")
    name = factory.LazyAttribute(lambda s: s.key.replace("-", " ").title())
    kind = Segment.Kind.DYNAMIC
    rules = factory.LazyFunction(lambda: {"trait": {"key": "plan", "op": "equals", "value": "pro"}})
