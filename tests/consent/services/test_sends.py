"""The send log that frequency caps count, in its batch form (dispatch writes it)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.models import TRANSACTIONAL_KEY, SendLog
from consent.services.sends import consent_record_sends
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db

NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_a_batch_of_sends_is_one_row_each_marked_transactional_from_its_topic():
    # given a marketing topic, a transactional one and three customers
    TopicFactory(key="news")
    first, second, third = CustomerFactory.create_batch(3)
    sends = [
        (first.pk, "email", "news"),
        (second.pk, "sms", "news"),
        (third.pk, "email", TRANSACTIONAL_KEY),
    ]
    # when dispatch records them
    with CaptureQueriesContext(connection) as queries:
        written = consent_record_sends(sends=sends, sent_at=NOON)
    # then in one insert
    inserts = [q for q in queries if "INSERT INTO consent_sendlog" in q["sql"]]
    assert len(inserts) == 1
    # and each is one row at the send time, transactional only for the transactional topic
    assert written == 3
    rows = set(
        SendLog.objects.values_list("customer_id", "channel", "topic_key", "is_transactional")
    )
    assert rows == {
        (first.pk, "email", "news", False),
        (second.pk, "sms", "news", False),
        (third.pk, "email", TRANSACTIONAL_KEY, True),
    }
    assert set(SendLog.objects.values_list("sent_at", flat=True)) == {NOON}


def test_a_batch_with_an_unknown_channel_writes_nothing():
    # given a batch whose last send names a channel that needs no consent
    customer = CustomerFactory()
    sends = [(customer.pk, "email", "news"), (customer.pk, "webhook", "news")]
    # when it is recorded, then it is refused and no row of it is written
    with pytest.raises(ValueError, match="unknown channel 'webhook'"):
        consent_record_sends(sends=sends, sent_at=NOON)
    assert SendLog.objects.count() == 0


def test_topics_the_caller_knows_are_not_looked_up_again():
    # given dispatch knows its batch's topic is marketing
    TopicFactory(key="news", is_transactional=False)
    customer = CustomerFactory()
    # when it records a send saying so
    with CaptureQueriesContext(connection) as queries:
        consent_record_sends(
            sends=[(customer.pk, "email", "news")],
            sent_at=NOON,
            transactional_topics={"news": False},
        )
    # then the insert is the only query, and the row is as it would be otherwise
    assert len(queries) == 1
    assert SendLog.objects.get().is_transactional is False
