import datetime as dt
import email
import email.policy
import threading

import pytest
from django.db import connection

from campaigns.models import Message, MessageStatus, MessageStatusChange
from campaigns.services.dispatch import messages_dispatch, messages_tick, retry_delay
from campaigns.services.outbox import NewMessage, message_enqueue, messages_enqueue_many
from campaigns.tasks import messages_dispatch_task
from consent.models import SendLog
from tests.campaigns.factories import CustomerFactory, TemplateContentFactory
from tests.campaigns.services.conftest import NOW, granted_customer, published_version

pytestmark = pytest.mark.django_db


def enqueue(customer, version, key, channel="email", topic_key="news", **kwargs):
    return message_enqueue(
        customer_id=customer.pk,
        channel=channel,
        template_version_id=version.pk,
        topic_key=topic_key,
        idempotency_key=key,
        now=NOW,
        **kwargs,
    )


def parse(envelope):
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def history(message):
    return list(message.status_changes.values_list("from_status", "to_status"))


def test_an_allowed_email_is_sent_once_with_the_unsubscribe_headers(backends, topic):
    # given a consenting customer and a queued marketing email
    customer = granted_customer(topic, email="ann@example.com")
    version = published_version(html="<p>Hi {{ customer.first_name }}</p>")
    message = enqueue(customer, version, "m-1")
    # when dispatch runs
    report = messages_dispatch(message_ids=[message.pk], now=NOW)
    # then one email reached the server, with RFC 8058 headers and the same link in the body
    assert (report.claimed, report.sent) == (1, 1)
    assert len(backends.envelopes) == 1
    received = parse(backends.envelopes[0])
    assert backends.envelopes[0].rcpt_tos == ["ann@example.com"]
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = received["List-Unsubscribe"].split(">")[0].removeprefix("<")
    assert link.startswith("https://jl.test/consent/")
    assert link in received.get_body(("plain",)).get_content()
    # and the row records the decision, the provider id and its history
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert message.decision["reason"] == "allowed"
    assert message.provider_id == received["Message-ID"] == f"<jl-{message.pk}@journeyline.test>"
    assert message.subject == "Hello Ann" and message.size > 0 and message.attempts == 1
    assert history(message) == [("", "queued"), ("queued", "sending"), ("sending", "sent")]
    assert SendLog.objects.filter(customer=customer, channel="email").count() == 1


def test_a_transactional_email_carries_no_unsubscribe_headers(backends, topic):
    # given a receipt on the transactional topic, to a customer with no marketing consent
    customer = CustomerFactory(email="bo@example.com")
    message = enqueue(customer, published_version(), "r-1", topic_key="transactional")
    # when it is dispatched
    messages_dispatch(message_ids=[message.pk], now=NOW)
    # then it is sent without List-Unsubscribe
    assert len(backends.envelopes) == 1
    assert parse(backends.envelopes[0])["List-Unsubscribe"] is None


def test_refused_consent_sends_nothing_and_says_why(backends, topic):
    # given a customer who never agreed to the topic
    customer = CustomerFactory()
    message = enqueue(customer, published_version(), "m-1")
    # when dispatch runs
    report = messages_dispatch(message_ids=[message.pk], now=NOW)
    # then nothing is sent, the message is skipped with the gate's reason
    assert report.skipped == 1
    assert backends.envelopes == []
    message.refresh_from_db()
    assert message.status == MessageStatus.SKIPPED
    assert message.decision_reason == "no_consent"
    assert "never agreed" in message.failure_reason
    assert SendLog.objects.count() == 0


def test_quiet_hours_defer_and_the_tick_sends_when_they_end(backends, topic, settings):
    # given quiet hours for email and a London customer at 23:00 local time
    settings.CONSENT_QUIET_HOURS = {"email": ("21:00", "08:00")}
    customer = granted_customer(topic)
    message = enqueue(customer, published_version(), "m-1")
    late = dt.datetime(2026, 3, 10, 23, 0, tzinfo=dt.UTC)
    # when dispatch runs at night
    messages_dispatch(message_ids=[message.pk], now=late)
    # then it is deferred to 08:00 and nothing is sent
    message.refresh_from_db()
    assert message.status == MessageStatus.DEFERRED
    assert message.next_attempt_at == dt.datetime(2026, 3, 11, 8, 0, tzinfo=dt.UTC)
    assert backends.envelopes == []
    # when the tick runs before and after that time
    assert messages_tick(now=late + dt.timedelta(hours=1)).requeued == 0
    morning = dt.datetime(2026, 3, 11, 8, 0, 5, tzinfo=dt.UTC)
    tick = messages_tick(now=morning)
    messages_dispatch(message_ids=[message.pk], now=morning)
    # then it goes back to the queue and is sent once
    assert tick.requeued == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.SENT
    assert len(backends.envelopes) == 1
    assert history(message)[-4:] == [
        ("sending", "deferred"),
        ("deferred", "queued"),
        ("queued", "sending"),
        ("sending", "sent"),
    ]


def test_the_tick_dispatches_what_it_requeues_on_commit(
    backends, topic, settings, django_capture_on_commit_callbacks
):
    # given a message deferred by quiet hours
    settings.CONSENT_QUIET_HOURS = {"email": ("21:00", "08:00")}
    message = enqueue(granted_customer(topic), published_version(), "m-1")
    messages_dispatch(message_ids=[message.pk], now=dt.datetime(2026, 3, 10, 23, tzinfo=dt.UTC))
    # when the tick runs after the quiet hours (tasks run eagerly on commit)
    settings.CONSENT_QUIET_HOURS = {}
    with django_capture_on_commit_callbacks(execute=True):
        messages_tick()
    # then the message is sent
    assert len(backends.envelopes) == 1
    assert Message.objects.get().status == MessageStatus.SENT


def test_frequency_caps_count_earlier_messages_of_the_same_batch(backends, topic, settings):
    # given a cap of 2 emails a day and three emails to one customer in one batch
    settings.CONSENT_FREQUENCY_CAPS = {"email": (2, 86400)}
    customer = granted_customer(topic)
    version = published_version()
    ids = [enqueue(customer, version, f"m-{i}").pk for i in range(3)]
    # when the batch is dispatched
    report = messages_dispatch(message_ids=ids, now=NOW)
    # then two are sent and the third waits for the cap, with the time it frees up
    assert (report.sent, report.deferred) == (2, 1)
    assert len(backends.envelopes) == 2
    capped = Message.objects.get(status=MessageStatus.DEFERRED)
    assert capped.decision_reason == "frequency_capped"
    assert capped.next_attempt_at == NOW + dt.timedelta(days=1)


def test_a_transient_error_retries_with_backoff_then_gives_up(backends, topic, settings):
    # given a server that says "try later" for this address, and three attempts allowed
    settings.DISPATCH_MAX_ATTEMPTS = 3
    settings.DISPATCH_RETRY_BASE_SECONDS = 60
    backends.handler.refuse["slow@example.com"] = "451 4.7.1 Try again later"
    message = enqueue(granted_customer(topic, email="slow@example.com"), published_version(), "m")
    now = NOW
    delays = []
    for attempt in (1, 2):
        # when dispatch meets the error
        messages_dispatch(message_ids=[message.pk], now=now)
        message.refresh_from_db()
        # then it is deferred with an exponential, jittered delay
        assert message.status == MessageStatus.DEFERRED
        assert message.attempts == attempt
        assert "451" in message.failure_reason
        delay = (message.next_attempt_at - now).total_seconds()
        base = 60 * 2 ** (attempt - 1)
        assert base / 2 <= delay <= base
        delays.append(delay)
        now = message.next_attempt_at
        messages_tick(now=now)
    # when the last attempt fails too
    messages_dispatch(message_ids=[message.pk], now=now)
    # then the message fails with the reason, and nothing was ever delivered
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.failure_reason.startswith("gave up after 3 attempts: recipient refused: 451")
    assert backends.envelopes == []
    assert SendLog.objects.count() == 0


def test_a_permanent_error_fails_at_once_with_the_reason(backends, topic):
    # given a server that refuses the address for good
    backends.handler.refuse["gone@example.com"] = "550 5.1.1 No such user"
    message = enqueue(granted_customer(topic, email="gone@example.com"), published_version(), "m")
    # when dispatch runs
    messages_dispatch(message_ids=[message.pk], now=NOW)
    # then it failed, with the server's answer, after one attempt
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.FAILED, 1)
    assert "550" in message.failure_reason
    assert SendLog.objects.count() == 0


def test_a_template_error_at_send_time_fails_the_message(backends, topic):
    # given a published version that uses a variable the customer lacks
    content = TemplateContentFactory(html="<p>{{ customer.loyalty.tier }}</p>")
    content.version.published_at = NOW
    content.version.save()
    message = enqueue(granted_customer(topic), content.version, "m")
    # when dispatch runs
    messages_dispatch(message_ids=[message.pk], now=NOW)
    # then nothing is sent and the reason names the template error
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert message.failure_reason.startswith("template error:")
    assert backends.envelopes == []


def test_sms_goes_through_the_provider_and_records_its_id(backends, provider, topic):
    # given a consenting customer and an SMS version
    provider.respond(201, json_body={"sid": "SM123", "status": "queued"})
    customer = granted_customer(topic, phone="+447700900123")
    message = enqueue(customer, published_version("sms"), "s-1", channel="sms")
    # when dispatch runs
    messages_dispatch(message_ids=[message.pk], now=NOW)
    # then Twilio got one request and the message holds its sid
    assert len(provider.requests) == 1
    message.refresh_from_db()
    assert (message.status, message.provider_id) == (MessageStatus.SENT, "SM123")


def test_a_task_delivered_twice_sends_once(backends, topic):
    # given a queued message
    message = enqueue(granted_customer(topic), published_version(), "m-1")
    # when the task runs twice with the same ids (JSON arguments, as from the broker)
    messages_dispatch_task.delay([message.pk])
    messages_dispatch_task.delay([message.pk])
    # then one email was sent and one send recorded
    assert len(backends.envelopes) == 1
    assert SendLog.objects.count() == 1
    assert MessageStatusChange.objects.filter(to_status="sent").count() == 1


def test_rate_limits_hold_back_what_the_bucket_cannot_pay_for(backends, topic, settings):
    # given an email rate of 2 per second with a burst of 2, and five queued messages
    settings.DISPATCH_RATE_LIMITS = {"email": (2.0, 2)}
    version = published_version()
    ids = [enqueue(granted_customer(topic), version, f"m-{i}").pk for i in range(5)]
    # when one task carries all five
    report = messages_dispatch(message_ids=ids, now=NOW)
    # then two are sent, three stay queued until the tokens will be there
    assert (report.sent, report.rate_limited) == (2, 3)
    assert len(backends.envelopes) == 2
    waiting = Message.objects.filter(status=MessageStatus.QUEUED)
    assert waiting.count() == 3
    assert all(m.next_attempt_at <= NOW + dt.timedelta(seconds=2) for m in waiting)


def test_the_tick_fails_a_message_a_dead_worker_left_sending(backends, topic, settings):
    # given a message claimed long ago by a worker that died
    message = enqueue(granted_customer(topic), published_version(), "m-1")
    Message.objects.filter(pk=message.pk).update(
        status=MessageStatus.SENDING, updated_at=NOW - dt.timedelta(hours=1)
    )
    # when the tick runs
    report = messages_tick(now=NOW)
    # then the message fails rather than being sent a second time
    assert report.lost == 1
    message.refresh_from_db()
    assert message.status == MessageStatus.FAILED
    assert "not retried" in message.failure_reason
    assert backends.envelopes == []


def test_the_tick_re_enqueues_a_queued_message_whose_task_was_lost(
    backends, topic, django_capture_on_commit_callbacks
):
    # given a message queued, whose task never arrived
    message = enqueue(granted_customer(topic), published_version(), "m-1")
    # when the tick runs before and after the sweep deadline
    assert messages_tick(now=NOW).swept == 0
    with django_capture_on_commit_callbacks(execute=True):
        report = messages_tick(now=message.next_attempt_at + dt.timedelta(seconds=1))
    # then it is dispatched once
    assert report.swept == 1
    assert len(backends.envelopes) == 1


def test_retry_delay_grows_exponentially_with_bounded_jitter(settings):
    settings.DISPATCH_RETRY_BASE_SECONDS = 10
    settings.DISPATCH_RETRY_MAX_SECONDS = 100
    assert retry_delay(attempt=1, rng=lambda: 0.0) == 5
    assert retry_delay(attempt=1, rng=lambda: 1.0) == 10
    assert retry_delay(attempt=3, rng=lambda: 1.0) == 40
    assert retry_delay(attempt=9, rng=lambda: 1.0) == 100
    assert retry_delay(attempt=1, retry_after=30, rng=lambda: 0.0) == 30


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_the_same_messages_send_each_once(backends, topic):
    # given forty queued messages, committed
    version = published_version()
    # (stored without the on-commit dispatch: autocommit would run it at once)
    ids = messages_enqueue_many(
        messages=[
            NewMessage(granted_customer(topic).pk, "email", version.pk, "news", f"m-{i}")
            for i in range(40)
        ],
        dispatch=False,
    )
    assert Message.objects.filter(status=MessageStatus.QUEUED).count() == 40
    barrier = threading.Barrier(4)
    errors = []

    def worker():
        try:
            barrier.wait()
            messages_dispatch(message_ids=ids, now=NOW)
        except Exception as error:  # surfaced below
            errors.append(error)
        finally:
            connection.close()

    # when four workers, each on its own connection, dispatch the same ids at once
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then the SMTP server received each message exactly once
    assert errors == []
    received = [parse(envelope)["Message-ID"] for envelope in backends.envelopes]
    assert len(received) == 40
    assert len(set(received)) == 40
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 40
    assert SendLog.objects.count() == 40


def test_an_email_shows_the_customers_recommendations_and_scores(backends, topic):
    from segments.models import CustomerRecommendation, CustomerScore, ModelVersion

    # given a customer with two recommended items and a churn score
    customer = granted_customer(topic, email="rec@example.com")
    recommender = ModelVersion.objects.create(
        kind="recommendations", version=1, trained_at=NOW, artefact=b""
    )
    churn = ModelVersion.objects.create(kind="churn", version=1, trained_at=NOW, artefact=b"")
    CustomerRecommendation.objects.create(
        customer=customer,
        model_version=recommender,
        computed_at=NOW,
        items=[{"product_id": "B", "name": "Tent"}, {"product_id": "C", "name": "Lamp"}],
    )
    CustomerScore.objects.create(
        customer=customer, kind="churn", model_version=churn, score=0.25, scored_at=NOW
    )
    version = published_version(
        html="<p>{% for item in recommendations %}[{{ item.name }}]{% endfor %}"
        "{{ scores.churn }}</p>"
    )
    # when its email is dispatched
    messages_dispatch(message_ids=[enqueue(customer, version, "rec-1").pk], now=NOW)
    # then the body lists the items, best first, and the score
    body = parse(backends.envelopes[0]).get_body(("html",)).get_content()
    assert "[Tent][Lamp]0.25" in body
