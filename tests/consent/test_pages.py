"""Customers' pages over HTTP, the way a mail client and a browser use them."""

import re
import time
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.test import Client

from consent import tokens
from consent.models import ConsentEvent, ConsentState
from consent.services.gate import consent_decide
from consent.services.ledger import consent_record
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser():
    return Client(
        enforce_csrf_checks=True, HTTP_USER_AGENT="Firefox/140", REMOTE_ADDR="198.51.100.7"
    )


@pytest.fixture
def topics():
    return {
        "news": TopicFactory(key="news", name="Newsletter", channels=["email"]),
        "deals": TopicFactory(key="deals", name="Deals", channels=["email", "sms"]),
        "confirmed": TopicFactory(
            key="vip", name="VIP club", channels=["email"], double_opt_in=True
        ),
    }


def _path(url: str) -> str:
    return urlsplit(url).path


def _csrf(response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())[1]


def test_the_preference_centre_lists_every_topic_per_channel_with_its_state(browser, topics):
    customer = CustomerFactory()
    consent_record(
        customer_id=customer.pk, channel="email", topic_key="news", action="grant", source="api"
    )

    response = browser.get(_path(tokens.preferences_link(customer_id=customer.pk)))

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    page = response.content.decode()
    assert "<legend>Email</legend>" in page and "<legend>SMS</legend>" in page
    boxes = dict(re.findall(r'name="topic" value="([^"]+)"( checked)?', page))
    assert boxes == {
        "email:deals": "",
        "email:news": " checked",
        "email:vip": "",
        "sms:deals": "",
    }
    assert "transactional" not in page


def test_saving_preferences_writes_one_ledger_row_per_change_with_evidence(
    browser, topics, sent_confirmations, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    consent_record(
        customer_id=customer.pk, channel="email", topic_key="news", action="grant", source="api"
    )
    path = _path(tokens.preferences_link(customer_id=customer.pk))
    csrf = _csrf(browser.get(path))

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(
            path,
            {"csrfmiddlewaretoken": csrf, "topic": ["sms:deals", "email:vip"], "save": ""},
        )

    assert response.status_code == 200
    assert "Your preferences are saved." in response.content.decode()
    rows = list(
        ConsentEvent.objects.filter(customer=customer, source="preference_centre")
        .order_by("pk")
        .values_list("channel", "topic__key", "action", "evidence")
    )
    evidence = {
        "ip": "198.51.100.7",
        "user_agent": "Firefox/140",
        "wording_version": "preferences-2026-1",
        "page": "preference_centre",
    }
    assert rows == [
        ("email", "news", "withdraw", evidence),
        ("email", "vip", "pending", evidence),
        ("sms", "deals", "grant", evidence),
    ]
    assert len(sent_confirmations) == 1


def test_the_preference_form_is_refused_without_its_csrf_token(browser, topics):
    customer = CustomerFactory()
    path = _path(tokens.preferences_link(customer_id=customer.pk))

    response = browser.post(path, {"topic": ["email:news"]})

    assert response.status_code == 403
    assert ConsentEvent.objects.count() == 0


def test_unsubscribe_from_everything_withdraws_every_channel(browser, topics):
    customer = CustomerFactory()
    for channel, topic in [("email", "news"), ("sms", "deals")]:
        consent_record(
            customer_id=customer.pk, channel=channel, topic_key=topic, action="grant", source="api"
        )
    path = _path(tokens.preferences_link(customer_id=customer.pk))
    csrf = _csrf(browser.get(path))

    response = browser.post(path, {"csrfmiddlewaretoken": csrf, "unsubscribe_all": ""})

    assert response.status_code == 200
    assert set(
        ConsentState.objects.filter(customer=customer, topic=None).values_list("channel", "action")
    ) == {("email", "withdraw"), ("sms", "withdraw"), ("push", "withdraw")}
    for channel, topic in [("email", "news"), ("sms", "deals")]:
        assert consent_decide(customer_id=customer.pk, channel=channel, topic_key=topic).reason == (
            "withdrawn"
        )
    assert "checked" not in response.content.decode()


def test_rfc_8058_one_click_unsubscribe_end_to_end(topics):
    customer = CustomerFactory()
    consent_record(
        customer_id=customer.pk, channel="email", topic_key="news", action="grant", source="api"
    )
    headers = tokens.unsubscribe_headers(customer_id=customer.pk, topic_key="news")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = re.fullmatch(r"<(http[^>]+)>", headers["List-Unsubscribe"])[1]
    mail_client = Client(enforce_csrf_checks=True)  # no cookie, no CSRF token: by design

    shown = mail_client.get(_path(url))
    assert shown.status_code == 200
    assert "Newsletter" in shown.content.decode()
    assert ConsentEvent.objects.filter(source="one_click_unsubscribe").count() == 0

    response = mail_client.post(
        _path(url),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert (
        ConsentEvent.objects.filter(
            customer=customer, source="one_click_unsubscribe", topic__key="news", action="withdraw"
        ).count()
        == 1
    )
    assert consent_decide(customer_id=customer.pk, channel="email", topic_key="news").reason == (
        "withdrawn"
    )


def test_unsubscribe_headers_carry_a_mailto_when_configured(settings, topics):
    settings.CONSENT_UNSUBSCRIBE_MAILTO = "unsubscribe@mail.example.com"
    settings.JOURNEYLINE_PUBLIC_URL = "https://mail.example.com"

    value = tokens.unsubscribe_headers(customer_id=1, topic_key=None)["List-Unsubscribe"]

    https, mailto = value.split(", ")
    assert https.startswith("<https://mail.example.com/consent/unsubscribe/")
    assert mailto.startswith("<mailto:unsubscribe@mail.example.com?subject=unsubscribe%20")


def test_a_one_click_post_without_the_one_click_body_changes_nothing(topics):
    customer = CustomerFactory()
    url = tokens.link_make(
        purpose=tokens.UNSUBSCRIBE, customer_id=customer.pk, channel="email", topic_key="news"
    )

    response = Client().post(_path(url), {"List-Unsubscribe": "maybe"})

    assert response.status_code == 400
    assert ConsentEvent.objects.count() == 0


def _old_token(purpose: str, customer_id: int, days: int) -> str:
    class LongAgo(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - days * 86400)

    return LongAgo(salt=purpose).sign_object({"c": customer_id}, compress=True)


@pytest.mark.parametrize("page", ["preferences", "unsubscribe"])
@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_expired_and_foreign_tokens_get_a_clear_page_and_change_nothing(
    page, method, topics
):
    customer = CustomerFactory()
    other = CustomerFactory()
    purpose = {"preferences": tokens.PREFERENCES, "unsubscribe": tokens.UNSUBSCRIBE}[page]
    good = tokens.token_make(purpose=purpose, customer_id=customer.pk)
    forged = signing.dumps({"c": other.pk}, salt=purpose, key="not-our-secret", compress=True)
    bad_tokens = [
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tampered signature
        tokens.token_make(purpose=tokens.CONFIRM, customer_id=customer.pk),  # another page's
        _old_token(purpose, customer.pk, days=400),  # expired
        forged,  # signed with another key
        "not-a-token",
    ]
    client = Client()

    for token in bad_tokens:
        response = getattr(client, method)(
            f"/consent/{page}/{token}/", {"List-Unsubscribe": "One-Click", "unsubscribe_all": ""}
        )
        assert response.status_code == 400, token
        assert "This link does not work" in response.content.decode()

    assert ConsentEvent.objects.count() == 0


def test_double_opt_in_the_link_shows_a_button_and_the_button_grants(
    browser, topics, sent_confirmations, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        consent_record(
            customer_id=customer.pk,
            channel="email",
            topic_key="vip",
            action="grant",
            source="preference_centre",
        )
    assert consent_decide(customer_id=customer.pk, channel="email", topic_key="vip").reason == (
        "pending_confirmation"
    )
    path = _path(sent_confirmations[0]["confirm_url"])

    shown = browser.get(path)  # a mail scanner opening the link confirms nothing
    assert shown.status_code == 200
    assert consent_decide(customer_id=customer.pk, channel="email", topic_key="vip").reason == (
        "pending_confirmation"
    )
    response = browser.post(path, {"csrfmiddlewaretoken": _csrf(shown)})

    assert response.status_code == 200
    assert "Subscription confirmed" in response.content.decode()
    assert ConsentEvent.objects.filter(customer=customer, source="double_opt_in").count() == 1
    assert consent_decide(customer_id=customer.pk, channel="email", topic_key="vip").allowed
    again = browser.post(path, {"csrfmiddlewaretoken": _csrf(shown)})
    assert "nothing to confirm" in again.content.decode()
    assert ConsentEvent.objects.filter(customer=customer, source="double_opt_in").count() == 1


def test_a_link_of_an_erased_or_merged_away_customer(topics):
    from consent.models import PrivacyRequest
    from customers.services.merge import customer_merge

    erased, source, target = CustomerFactory(), CustomerFactory(), CustomerFactory()
    PrivacyRequest.objects.create(
        kind="erasure", customer_id=erased.pk, requested_by="dpo", channel="command"
    )
    customer_merge(source_id=source.pk, target_id=target.pk)

    assert Client().get(_path(tokens.preferences_link(customer_id=erased.pk))).status_code == 400
    moved = Client().get(_path(tokens.preferences_link(customer_id=source.pk)))
    assert moved.status_code == 200


def test_pages_are_in_the_customers_language(topics):
    dutch = CustomerFactory(locale="nl-NL")
    unknown = CustomerFactory(locale="")

    assert (
        '<html lang="nl-nl">'
        in Client().get(_path(tokens.preferences_link(customer_id=dutch.pk))).content.decode()
    )
    assert (
        '<html lang="en-us">'
        in Client().get(_path(tokens.preferences_link(customer_id=unknown.pk))).content.decode()
    )
