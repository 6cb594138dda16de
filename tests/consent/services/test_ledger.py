import datetime as dt

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.models import ConsentEvent, ConsentState
from consent.services.ledger import ConsentError, consent_record
from customers.services.merge import customer_merge
from tests.consent.conftest import NOW
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db


def _states(customer):
    return {
        (s.channel, s.topic.key if s.topic else None): s.action
        for s in ConsentState.objects.filter(customer=customer).select_related("topic")
    }


def test_a_grant_is_a_ledger_row_and_the_current_state():
    customer = CustomerFactory()
    TopicFactory(key="news")

    event = consent_record(
        customer_id=customer.pk,
        channel="email",
        topic_key="news",
        action="grant",
        source="api",
        evidence={"ip": "203.0.113.9", "wording_version": "v3"},
        now=NOW,
    )

    assert ConsentEvent.objects.count() == 1
    assert event.evidence == {"ip": "203.0.113.9", "wording_version": "v3"}
    assert _states(customer) == {("email", "news"): "grant"}


def test_a_later_row_replaces_the_state_but_a_back_dated_one_does_not():
    customer = CustomerFactory()
    TopicFactory(key="news")
    record = dict(customer_id=customer.pk, channel="email", topic_key="news", now=NOW)

    consent_record(**record, action="grant", source="api", occurred_at=NOW)
    consent_record(**record, action="withdraw", source="preference_centre", occurred_at=NOW)
    consent_record(
        **record, action="grant", source="import", occurred_at=NOW - dt.timedelta(days=30)
    )

    assert ConsentEvent.objects.filter(customer=customer).count() == 3
    assert _states(customer) == {("email", "news"): "withdraw"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"topic_key": "nope"}, "topic"),
        ({"topic_key": "sms-only"}, "topic"),
        ({"topic_key": "transactional"}, "topic"),
        ({"topic_key": None, "action": "pending"}, "action"),
        ({"action": "maybe"}, "action"),
        ({"source": "rumour"}, "source"),
        ({"evidence": {"password": "x"}}, "evidence"),
        ({"evidence": {"ip": 12}}, "evidence.ip"),
        ({"occurred_at": dt.datetime(2026, 1, 1)}, "occurred_at"),  # noqa: DTZ001
        ({"occurred_at": NOW + dt.timedelta(days=1)}, "occurred_at"),
        ({"customer_id": 10**9}, "customer"),
    ],
)
def test_bad_input_is_refused_with_the_field_and_nothing_is_written(changes, field):
    customer = CustomerFactory()
    TopicFactory(key="news")
    TopicFactory(key="sms-only", channels=["sms"])
    arguments = dict(
        customer_id=customer.pk,
        channel="email",
        topic_key="news",
        action="grant",
        source="api",
        now=NOW,
    )

    with pytest.raises(ConsentError) as error:
        consent_record(**{**arguments, **changes})

    assert error.value.field == field
    assert ConsentEvent.objects.count() == 0
    assert ConsentState.objects.count() == 0


def test_granting_a_double_opt_in_topic_records_pending_and_asks_for_confirmation(
    sent_confirmations, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    TopicFactory(key="deals", double_opt_in=True)

    with django_capture_on_commit_callbacks(execute=True):
        event = consent_record(
            customer_id=customer.pk,
            channel="email",
            topic_key="deals",
            action="grant",
            source="preference_centre",
            now=NOW,
        )

    assert event.action == "pending"
    assert _states(customer) == {("email", "deals"): "pending"}
    assert len(sent_confirmations) == 1
    sent = sent_confirmations[0]
    assert (sent["customer_id"], sent["channel"], sent["topic_key"]) == (
        customer.pk,
        "email",
        "deals",
    )
    assert "/consent/confirm/" in sent["confirm_url"]


def test_a_confirmed_grant_of_a_double_opt_in_topic_is_not_asked_again(
    sent_confirmations, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    TopicFactory(key="deals", double_opt_in=True)
    record = dict(customer_id=customer.pk, channel="email", topic_key="deals", now=NOW)
    consent_record(**record, action="grant", source="double_opt_in")

    with django_capture_on_commit_callbacks(execute=True):
        event = consent_record(**record, action="grant", source="api")

    assert event.action == "grant"
    assert sent_confirmations == []


def test_a_merge_moves_the_ledger_to_the_survivor_and_rebuilds_its_state():
    source, target = CustomerFactory(), CustomerFactory()
    TopicFactory(key="news")
    consent_record(
        customer_id=source.pk,
        channel="email",
        topic_key="news",
        action="grant",
        source="api",
        occurred_at=NOW,
        now=NOW,
    )
    consent_record(
        customer_id=target.pk,
        channel="email",
        topic_key="news",
        action="withdraw",
        source="api",
        occurred_at=NOW - dt.timedelta(hours=1),
        now=NOW,
    )

    customer_merge(source_id=source.pk, target_id=target.pk)

    assert ConsentEvent.objects.filter(customer=target).count() == 2
    assert ConsentState.objects.filter(customer_id=source.pk).count() == 0
    assert _states(target) == {("email", "news"): "grant"}


def test_the_command_rebuilds_the_state_from_the_ledger():
    customer = CustomerFactory()
    TopicFactory(key="news")
    consent_record(
        customer_id=customer.pk,
        channel="sms",
        topic_key=None,
        action="withdraw",
        source="sms_keyword",
        now=NOW,
    )
    expected = _states(customer)
    ConsentState.objects.all().delete()

    call_command("rebuild_consent_state", stdout=open("/dev/null", "w"))  # noqa: SIM115

    assert _states(customer) == expected == {("sms", None): "withdraw"}


_rows = st.lists(
    st.tuples(
        st.sampled_from(["email", "sms"]),
        st.sampled_from([None, "news", "deals"]),
        st.sampled_from(["grant", "withdraw"]),
        st.integers(min_value=0, max_value=5),  # minutes before NOW; ties are common
    ),
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_rows)
def test_the_state_is_always_the_last_row_of_the_ledger_in_time_order(rows):
    customer = CustomerFactory()
    TopicFactory(key="news")
    TopicFactory(key="deals")
    events = [
        consent_record(
            customer_id=customer.pk,
            channel=channel,
            topic_key=topic,
            action=action,
            source="import",
            occurred_at=NOW - dt.timedelta(minutes=minutes),
            now=NOW,
        )
        for channel, topic, action, minutes in rows
    ]

    last: dict = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.pk)):
        last[(event.channel, event.topic.key if event.topic else None)] = event.action
    assert _states(customer) == last
    ConsentState.objects.filter(customer=customer).delete()
    call_command("rebuild_consent_state", customer_ids=[customer.pk], stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert _states(customer) == last


def test_the_database_refuses_to_change_or_delete_a_ledger_row():
    from django.db import DatabaseError, transaction

    customer = CustomerFactory()
    TopicFactory(key="news")
    event = consent_record(
        customer_id=customer.pk,
        channel="email",
        topic_key="news",
        action="grant",
        source="api",
        evidence={"ip": "203.0.113.1"},
        now=NOW,
    )
    attempts = [
        lambda: ConsentEvent.objects.filter(pk=event.pk).update(action="withdraw"),
        lambda: ConsentEvent.objects.filter(pk=event.pk).update(evidence={}),
        lambda: ConsentEvent.objects.filter(pk=event.pk).delete(),
    ]

    for attempt in attempts:
        with pytest.raises(DatabaseError, match="consent"), transaction.atomic():
            attempt()

    assert ConsentEvent.objects.values_list("action", "evidence").get() == (
        "grant",
        {"ip": "203.0.113.1"},
    )
