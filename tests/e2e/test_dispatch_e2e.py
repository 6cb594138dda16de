"""The outbox through a real Celery worker into a real SMTP server.

A message stored with ``message_enqueue`` is handed to the worker on commit, over a
private Redis; the worker claims it, asks the consent gate, renders and sends it to an
aiosmtpd sink. One worker serves the whole module (starting one costs seconds); each
test waits until the broker holds no task and no task is in progress before it looks.
"""

import contextlib
import email
import email.policy

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from campaigns.models import Message, MessageStatus
from campaigns.services.outbox import message_enqueue
from campaigns.tasks import messages_dispatch_task
from config.celery import app as celery_app
from consent.models import Action, SendLog, Source
from consent.services.ledger import consent_record
from tests.campaigns.factories import CustomerFactory
from tests.campaigns.servers import SmtpSink
from tests.campaigns.services.conftest import published_version
from tests.consent.factories import TopicFactory
from tests.processes import PrivateRedis, Stack, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _queues() -> str:
    """Every queue a task may be routed to, so the worker takes dispatch wherever it goes."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values() if "queue" in route}
    return ",".join(sorted({"celery", *routed}))


@pytest.fixture(scope="module")
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sink, django_db_setup):
    workdir = tmp_path_factory.mktemp("dispatch-e2e")
    private = PrivateRedis(workdir / "redis")
    private.start()
    stack = Stack(
        workdir,
        private,
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(sink.port),
        DEFAULT_FROM_EMAIL="Shop <shop@journeyline.test>",
        JOURNEYLINE_PUBLIC_URL="https://jl.test",
        CONSENT_QUIET_HOURS_EMAIL="",
        EMAIL_SEND_RATE="",
    )
    stack.start_worker(queues=_queues())
    yield stack
    # Every test left the worker idle (see settled), so there is nothing to finish.
    stack.stop("worker", kill=True)
    private.stop()


@contextlib.contextmanager
def _publishing_to(url: str):
    """This process's Celery app publishes to ``url`` for real (unit tests run eagerly)."""
    saved = celery_app.conf.broker_url, celery_app.conf.task_always_eager

    def reset_pools():
        # Dropped, not closed: kombu keeps one pool per broker URL and would hand back a
        # closed one to the next test.
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    reset_pools()
    celery_app.conf.broker_url, celery_app.conf.task_always_eager = url, False
    try:
        yield
    finally:
        reset_pools()
        celery_app.conf.broker_url, celery_app.conf.task_always_eager = saved


@pytest.fixture
def worker(stack, sink):
    sink.envelopes.clear()
    # kombu spells a Unix socket Redis URL redis+socket:///path (as config/settings does).
    with _publishing_to("redis+socket://" + str(stack.redis.socket)):
        yield stack


def idle(stack: Stack) -> bool:
    """No task waiting in any queue, none taken and not yet acknowledged (acks are late)."""
    client = redis.Redis(unix_socket_path=str(stack.redis.socket))
    waiting = sum(client.llen(queue) for queue in _queues().split(","))
    return waiting == 0 and client.hlen("unacked") == 0


def settled(stack: Stack, message: Message, status: str) -> None:
    try:
        wait_until(
            lambda: Message.objects.filter(pk=message.pk, status=status).exists() and idle(stack),
            timeout=60,
            what=f"message {message.pk} {status} and the worker idle",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}; worker log:\n{stack.log('worker')[-3000:]}") from None


@pytest.fixture
def topic(db):
    return TopicFactory(key="news", channels=["email", "sms", "push"])


def consenting(topic, **fields):
    customer = CustomerFactory(**fields)
    consent_record(
        customer_id=customer.pk,
        channel="email",
        topic_key=topic.key,
        action=Action.GRANT,
        source=Source.API,
        now=timezone.now(),
    )
    return customer


def enqueue(customer, version, key):
    return message_enqueue(
        customer_id=customer.pk,
        channel="email",
        template_version_id=version.pk,
        topic_key="news",
        idempotency_key=key,
    )


def parse(envelope):
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def test_the_worker_renders_gates_and_delivers_with_the_unsubscribe_headers(worker, sink, topic):
    # given a consenting customer and a published marketing email
    customer = consenting(topic, email="ann@example.com", traits={"first_name": "Ann"})
    version = published_version(
        subject="Hello {{ customer.first_name }}", html="<p>Hi {{ customer.first_name }}</p>"
    )
    # when a message is put in the outbox (its dispatch goes to the broker on commit)
    message = enqueue(customer, version, "e2e-allowed")
    settled(worker, message, MessageStatus.SENT)
    # then the SMTP server received it once, rendered, with the RFC 8058 headers
    assert len(sink.envelopes) == 1
    assert sink.envelopes[0].rcpt_tos == ["ann@example.com"]
    received = parse(sink.envelopes[0])
    assert received["Subject"] == "Hello Ann"
    assert "Hi Ann" in received.get_body(("html",)).get_content()
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = received["List-Unsubscribe"].split(">")[0].removeprefix("<")
    assert link.startswith("https://jl.test/consent/")
    assert link in received.get_body(("plain",)).get_content()
    # and the row says what the gate decided and what the provider called it
    message.refresh_from_db()
    assert message.decision["reason"] == "allowed"
    assert message.provider_id == received["Message-ID"]
    assert list(message.status_changes.values_list("to_status", flat=True)) == [
        "queued",
        "sending",
        "sent",
    ]
    assert SendLog.objects.filter(customer=customer).count() == 1


def test_a_refused_consent_decision_sends_nothing_and_says_why(worker, sink, topic):
    # given a customer who never agreed to the (opt-in) topic
    customer = CustomerFactory(email="bob@example.com")
    version = published_version()
    # when a message to them is put in the outbox and the worker takes it
    message = enqueue(customer, version, "e2e-refused")
    settled(worker, message, MessageStatus.SKIPPED)
    # then nothing reached the SMTP server, nothing was counted, and the row says why
    assert sink.envelopes == []
    assert SendLog.objects.count() == 0
    message.refresh_from_db()
    assert message.decision_reason == "no_consent"
    assert message.provider_id == "" and message.sent_at is None


def test_the_same_message_enqueued_twice_arrives_once(worker, sink, topic):
    # given a consenting customer
    customer = consenting(topic, email="cy@example.com")
    version = published_version()
    done_before = worker.log("worker").count("] succeeded in")
    # when the same message is put in the outbox twice, and its task is delivered twice more
    first = enqueue(customer, version, "e2e-twice")
    second = enqueue(customer, version, "e2e-twice")
    messages_dispatch_task.apply_async(args=[[first.pk]])
    messages_dispatch_task.apply_async(args=[[first.pk]])
    settled(worker, first, MessageStatus.SENT)
    wait_until(
        lambda: worker.log("worker").count("] succeeded in") == done_before + 3,
        what="the worker to finish the three dispatch tasks",
    )
    # then there is one row and the SMTP server received one email
    assert second.pk == first.pk
    assert Message.objects.filter(idempotency_key="e2e-twice").count() == 1
    assert [envelope.rcpt_tos for envelope in sink.envelopes] == [["cy@example.com"]]
    assert SendLog.objects.filter(customer=customer).count() == 1
