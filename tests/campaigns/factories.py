"""Factories for the campaigns models."""

import factory

from campaigns.models import MessageTemplate, TemplateContent, TemplateVersion
from consent.channels import Channel
from customers.models import Customer


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"campaign-user-{n}")
    email = factory.Sequence(lambda n: f"reader{n}@example.com")
    phone = "+15555550123"
    locale = "en"
    timezone = "Europe/London"
    traits = factory.LazyFunction(lambda: {"first_name": "Ann"})


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    channel = Channel.EMAIL
    default_locale = "en"


class TemplateVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TemplateVersion

    template = factory.SubFactory(MessageTemplateFactory)
    number = factory.Sequence(lambda n: n + 1)


class TemplateContentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TemplateContent

    version = factory.SubFactory(TemplateVersionFactory)
    locale = "en"
    subject = "Hello {{ customer.first_name }}"
    html = "<p>Hi {{ customer.first_name }}</p>"
    layout = "base"
