"""Dispatch works in sets: the queries of a batch do not grow with its size, and what is
prepared once per batch (template parts, the MIME skeleton, the connection) never leaks
one recipient's data into another's message."""

import email
import email.policy

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Message, MessageStatus, MessageStatusChange
from campaigns.services.dispatch import messages_dispatch
from campaigns.services.outbox import NewMessage, messages_enqueue_many
from consent.models import SendLog
from tests.campaigns.factories import CustomerFactory
from tests.campaigns.services.conftest import NOW, granted_customer, published_version

pytestmark = pytest.mark.django_db


def _enqueue(customers, version, prefix):
    return messages_enqueue_many(
        messages=[
            NewMessage(
                customer_id=customer.pk,
                channel="email",
                template_version_id=version.pk,
                topic_key="news",
                idempotency_key=f"{prefix}-{customer.pk}",
            )
            for customer in customers
        ],
        now=NOW,
        dispatch=False,
    )


def _queries_to_dispatch(ids):
    with CaptureQueriesContext(connection) as queries:
        report = messages_dispatch(message_ids=ids, now=NOW)
    assert report.sent == len(ids), report
    return len(queries)


def test_the_queries_of_a_batch_do_not_grow_with_its_size(backends, topic):
    # given a published email version and customers who agreed to the topic
    version = published_version(
        html="<p>Hi {{ customer.first_name }} {{ scores.churn|default(0) }}</p>"
    )
    customers = [granted_customer(topic, email=f"c{n}@example.com") for n in range(15)]
    messages_dispatch(message_ids=_enqueue(customers[:1], version, "warm"), now=NOW)
    # when a batch of 2 and a batch of 12 are dispatched
    small = _queries_to_dispatch(_enqueue(customers[1:3], version, "small"))
    large = _queries_to_dispatch(_enqueue(customers[3:15], version, "large"))
    # then both take the same number of queries, and every message went out once
    assert small == large
    assert len(backends.envelopes) == 15
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 15
    assert SendLog.objects.count() == 15


def test_each_recipient_gets_their_own_fields_and_unsubscribe_link(backends, topic):
    # given three customers in one batch
    version = published_version(
        subject="For {{ customer.first_name }}",
        html="<p>Hello {{ customer.first_name }}</p>"
        '<p><a href="{{ links.unsubscribe }}">unsubscribe</a></p>',
    )
    names = ["Ada", "Grace", "Edsger"]
    customers = [
        granted_customer(topic, email=f"{name.lower()}@example.com", traits={"first_name": name})
        for name in names
    ]
    # when the batch is dispatched
    messages_dispatch(message_ids=_enqueue(customers, version, "own"), now=NOW)
    # then each message carries that recipient's name, address and signed link only
    assert len(backends.envelopes) == 3
    unsubscribe_links = set()
    for envelope in backends.envelopes:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        name = next(n for n in names if envelope.rcpt_tos == [f"{n.lower()}@example.com"])
        assert parsed["Subject"] == f"For {name}"
        html = parsed.get_body(("html",)).get_content()
        assert f"Hello {name}" in html
        assert all(other not in html for other in names if other != name)
        link = parsed["List-Unsubscribe"].split(">", 1)[0].removeprefix("<")
        assert link in html  # the same signed link in the body as in the header
        unsubscribe_links.add(link)
    assert len(unsubscribe_links) == 3
    assert MessageStatusChange.objects.filter(to_status=MessageStatus.SENT).count() == 3


def test_a_preferences_link_is_signed_only_for_templates_that_show_it(backends, topic):
    from consent.tokens import PREFERENCES, token_read

    # given two customers, one sent a template showing the preferences link, one not
    shows = published_version(
        html='<p><a href="{{ links.preferences }}">Preferences</a></p>', layout=""
    )
    plain = published_version(html="<p>No links here</p>", layout="")
    ada = granted_customer(topic, email="ada@example.com")
    bob = granted_customer(topic, email="bob@example.com")
    ids = _enqueue([ada], shows, "shows") + _enqueue([bob], plain, "plain")
    # when both are dispatched in one batch
    messages_dispatch(message_ids=ids, now=NOW)
    # then Ada's link is a valid token for her, and Bob's email has no preferences link
    by_address = {envelope.rcpt_tos[0]: envelope for envelope in backends.envelopes}
    html = (
        email.message_from_bytes(by_address["ada@example.com"].content, policy=email.policy.default)
        .get_body(("html",))
        .get_content()
    )
    token = html.split('href="', 1)[1].split('"', 1)[0].rstrip("/").rsplit("/", 1)[1]
    assert token_read(purpose=PREFERENCES, token=token).customer_id == ada.pk
    assert b"/preferences/" not in by_address["bob@example.com"].content.split(b"\r\n\r\n", 1)[1]


def test_a_batch_of_emails_goes_over_several_connections_each_message_once(
    backends, topic, settings, monkeypatch
):
    # given three connections per batch, a server noting which connection brought what,
    # and one address the server asks to try again later
    settings.DISPATCH_EMAIL_CONNECTIONS = 3
    peers = []
    original = backends.handler.handle_DATA

    async def noting_the_connection(server, session, envelope):
        peers.append(session.peer)
        return await original(server, session, envelope)

    monkeypatch.setattr(backends.handler, "handle_DATA", noting_the_connection)
    backends.handler.refuse["later@example.com"] = "451 4.7.1 Try again later"
    version = published_version(html="<p>Hi {{ customer.email }}</p>", layout="")
    customers = [granted_customer(topic, email=f"p{n}@example.com") for n in range(8)]
    customers.append(granted_customer(topic, email="later@example.com"))
    # when the batch is dispatched
    report = messages_dispatch(message_ids=_enqueue(customers, version, "lanes"), now=NOW)
    # then the eight others arrive once each, over three connections, each with its own
    # body; the refused one alone waits for a retry
    assert (report.sent, report.deferred) == (8, 1)
    received = sorted(envelope.rcpt_tos[0] for envelope in backends.envelopes)
    assert received == sorted(f"p{n}@example.com" for n in range(8))
    assert len(set(peers)) == 3
    for envelope in backends.envelopes:
        assert f"Hi {envelope.rcpt_tos[0]}".encode() in envelope.content
    later = Message.objects.get(customer__email="later@example.com")
    assert later.status == MessageStatus.DEFERRED
    assert "451" in later.failure_reason
    assert SendLog.objects.count() == 8


def test_a_batch_in_several_chunks_on_the_wire_records_each_message_once(
    backends, topic, settings, monkeypatch
):
    from campaigns.services import dispatch

    # given chunks of two over two connections (one chunk is sent while the next is
    # rendered), a customer without consent in the middle and one the server defers
    monkeypatch.setattr(dispatch, "FLUSH_EVERY", 2)
    settings.DISPATCH_EMAIL_CONNECTIONS = 2
    backends.handler.refuse["later@example.com"] = "451 4.7.1 Try again later"
    version = published_version(html="<p>Hi {{ customer.email }}</p>", layout="")
    customers = [granted_customer(topic, email=f"c{n}@example.com") for n in range(4)]
    customers.insert(2, CustomerFactory(email="never@example.com"))
    customers.append(granted_customer(topic, email="later@example.com"))
    customers += [granted_customer(topic, email=f"d{n}@example.com") for n in range(2)]
    ids = _enqueue(customers, version, "chunks")
    # when the batch of eight is dispatched
    report = messages_dispatch(message_ids=ids, now=NOW)
    # then every message ends once: six sent once each, one skipped, one deferred
    assert (report.sent, report.skipped, report.deferred) == (6, 1, 1)
    received = sorted(envelope.rcpt_tos[0] for envelope in backends.envelopes)
    assert received == sorted(
        [f"c{n}@example.com" for n in range(4)] + ["d0@example.com", "d1@example.com"]
    )
    statuses = dict(Message.objects.values_list("customer__email", "status"))
    assert statuses["never@example.com"] == MessageStatus.SKIPPED
    assert statuses["later@example.com"] == MessageStatus.DEFERRED
    assert sum(status == MessageStatus.SENT for status in statuses.values()) == 6
    changes = list(
        MessageStatusChange.objects.filter(message_id__in=ids)
        .exclude(from_status="")
        .values_list("from_status", "to_status")
    )
    assert len(changes) == 16  # queued → sending, then sending → the end, for each
    assert changes.count((MessageStatus.SENDING, MessageStatus.SENT)) == 6
    assert SendLog.objects.count() == 6


def _claims_prepared() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%SET status = 'sending'%"],
        )
        return cursor.fetchone()[0]


def test_dispatch_statements_are_prepared_unless_turned_off(backends, topic, settings):
    version = published_version(html="<p>Hi</p>", layout="")
    customers = [granted_customer(topic, email=f"s{n}@example.com") for n in range(6)]
    # given prepared statements turned off (a pooler that cannot keep them)
    settings.DISPATCH_PREPARED_STATEMENTS = False
    before = _claims_prepared()
    # when a batch is dispatched, then it is sent and nothing new is prepared
    report = messages_dispatch(message_ids=_enqueue(customers[:3], version, "off"), now=NOW)
    assert (report.sent, _claims_prepared()) == (3, before)
    # given them on (the default), when the next batch is dispatched, then the claim is
    # a prepared statement of this connection
    settings.DISPATCH_PREPARED_STATEMENTS = True
    report = messages_dispatch(message_ids=_enqueue(customers[3:], version, "on"), now=NOW)
    assert report.sent == 3
    assert _claims_prepared() == 1
