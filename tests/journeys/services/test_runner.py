import datetime as dt

import pytest
from django.db import transaction

from customers.models import Customer
from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.enrolments import journey_enrol
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import linear, step

pytestmark = pytest.mark.django_db

WELCOME = linear(
    step("hello", "send", {"channel": "email", "template": 1, "topic": "news"}),
    step("tag", "update_profile", {"set": {"welcomed": True}, "unset": ["lead"]}),
    step("pause", "wait", {"duration": {"days": 2}}),
    step("hook", "webhook", {"template": 4, "body": {"a": 1}}),
)


def transitions_of(enrolment):
    return list(
        EnrolmentTransition.objects.filter(enrolment=enrolment)
        .order_by("id")
        .values_list("from_step", "to_step", "reason", "actor")
    )


def test_enrolling_applies_every_effect_in_one_transaction(
    outbox, django_capture_on_commit_callbacks
):
    # Given a live journey that mails, tags the profile, then waits two days
    journey = live_journey(WELCOME)
    customer = CustomerFactory(traits={"lead": True, "plan": "free"})
    now = clock.now()

    # When the customer enters it
    with django_capture_on_commit_callbacks(execute=True):
        enrolment = journey_enrol(
            journey=journey, customer=customer, payload={"source": "ad"}, now=now
        )

    # Then the log, the enrolment row, the profile and the outbox all show the same moves
    enrolment.refresh_from_db()
    assert transitions_of(enrolment) == [
        ("", "start", "enrolled", "api"),
        ("start", "hello", "next", "api"),
        ("hello", "tag", "next", "api"),
        ("tag", "pause", "next", "api"),
    ]
    assert (enrolment.status, enrolment.current_step, enrolment.wake_at) == (
        "waiting",
        "pause",
        now + dt.timedelta(days=2),
    )
    assert enrolment.trigger_payload == {"source": "ad"}
    assert Customer.objects.get(pk=customer.pk).traits == {"plan": "free", "welcomed": True}
    [message] = outbox.enqueued
    assert (message.channel, message.template_id, message.topic, message.step_id) == (
        "email",
        1,
        "news",
        "hello",
    )
    assert message.idempotency_key == f"journey:{enrolment.pk}:hello:1"
    assert message.context == {"journey": {"id": journey.pk}, "trigger": {"source": "ad"}}
    assert outbox.dispatched == [message.idempotency_key]


def test_nothing_is_dispatched_when_the_transaction_rolls_back(
    outbox, django_capture_on_commit_callbacks
):
    journey = live_journey(WELCOME)
    customer = CustomerFactory()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        journey_enrol(journey=journey, customer=customer)
        raise RuntimeError("the caller failed after enrolling")

    assert callbacks == []
    assert outbox.dispatched == []
    assert Enrolment.objects.count() == 0
    assert EnrolmentTransition.objects.count() == 0
    assert Customer.objects.get(pk=customer.pk).traits == {}


def test_without_an_outbox_a_send_step_fails_the_enrolment_and_sends_nothing(no_outbox):
    journey = live_journey(WELCOME)
    customer = CustomerFactory(traits={"lead": True})

    enrolment = journey_enrol(journey=journey, customer=customer)

    enrolment.refresh_from_db()
    assert enrolment.status == "failed"
    assert enrolment.finished_at is not None
    assert transitions_of(enrolment)[-1] == ("", "", "failed", "api")
    assert EnrolmentTransition.objects.get(enrolment=enrolment, reason="failed").data == {
        "error": "no outbox is configured for send steps"
    }
    # The profile update of the same call was not applied either.
    assert Customer.objects.get(pk=customer.pk).traits == {"lead": True}


@pytest.fixture
def campaign_templates():
    from journeys import ports as ports_module
    from journeys.ports import CampaignTemplates, ports

    previous = ports.templates
    ports_module.register_template_catalog(CampaignTemplates())
    yield
    ports_module.register_template_catalog(previous)


def email_template(*, published: bool):
    from tests.campaigns.factories import TemplateContentFactory

    content = TemplateContentFactory()
    if published:
        content.version.published_at = clock.now()
        content.version.save(update_fields=["published_at"])
    return content.version.template


def test_sends_become_campaigns_outbox_rows_and_a_refused_one_fails_only_its_enrolment(
    campaign_templates, django_capture_on_commit_callbacks
):
    from campaigns.models import Message
    from journeys.services.tick import enrolments_due_tick

    def mail_after_an_hour(template, name):
        return live_journey(
            linear(
                step("pause", "wait", {"duration": {"hours": 1}}),
                step(
                    "mail", "send", {"channel": "email", "template": template.pk, "topic": "news"}
                ),
            ),
            name=name,
        )

    good = mail_after_an_hour(email_template(published=True), "Good")
    # Published with a template that later lost its published version (say, by an edit).
    broken_template = email_template(published=True)
    broken = mail_after_an_hour(broken_template, "Broken")
    broken_template.versions.update(published_at=None)
    now = clock.now()
    ok = journey_enrol(journey=good, customer=CustomerFactory(), now=now)
    bad = journey_enrol(journey=broken, customer=CustomerFactory(), now=now)

    with django_capture_on_commit_callbacks(execute=False):
        assert enrolments_due_tick(now=now + dt.timedelta(hours=1)) == 2

    ok.refresh_from_db()
    bad.refresh_from_db()
    assert (ok.status, bad.status) == ("completed", "failed")
    [message] = Message.objects.all()
    assert (message.origin, message.enrolment_id, message.step_id, message.topic_key) == (
        "journey",
        ok.pk,
        "mail",
        "news",
    )
    assert message.idempotency_key == f"journey:{ok.pk}:mail:1"
    assert EnrolmentTransition.objects.get(enrolment=bad, reason="failed").data["error"] == (
        f"the outbox refused a message: template_id: template {broken_template.pk} has no "
        "published version"
    )
