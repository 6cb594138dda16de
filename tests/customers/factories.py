"""Factories for the customers models, for tests of the apps built on them."""

import datetime as dt

import factory

from customers.models import Customer, Device, Event, Identity

BASE_TIME = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    traits = factory.LazyFunction(dict)

    @factory.post_generation
    def user_identity(customer, create, extracted, **kwargs):
        # Every known customer is reachable by its user id, as ingest makes it.
        if create and customer.external_id:
            Identity.objects.create(
                kind=Identity.Kind.USER_ID, value=customer.external_id, customer=customer
            )


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    kind = Identity.Kind.ANONYMOUS_ID
    value = factory.Sequence(lambda n: f"anonymous-{n}")
    customer = factory.SubFactory(CustomerFactory)


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    customer = factory.SubFactory(CustomerFactory)
    platform = Device.Platform.IOS
    token = factory.Sequence(lambda n: f"push-token-{n:06d}-" + "x" * 40)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    type = Event.Type.TRACK
    name = "Product Viewed"
    properties = factory.LazyFunction(dict)
    timestamp = factory.Sequence(lambda n: BASE_TIME + dt.timedelta(minutes=n))
    message_id = factory.Sequence(lambda n: f"message-{n}")
