import factory

from consent.models import Topic
from customers.models import Customer, Device


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    phone = factory.Sequence(lambda n: f"+3161{n:07d}")
    timezone = "Europe/Amsterdam"
    traits = factory.LazyAttribute(lambda c: {"name": f"Name of {c.external_id}"})


class DeviceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Device

    customer = factory.SubFactory(CustomerFactory)
    platform = Device.Platform.IOS
    token = factory.Sequence(lambda n: f"push-token-{n:012d}")


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.LazyAttribute(lambda t: t.key.replace("-", " ").title())
    description = "News and offers"
    channels = factory.LazyFunction(lambda: ["email", "sms", "push"])
    default = Topic.Default.OPT_IN
    double_opt_in = False
