"""Links to customers' pages: the URL reversed once per page must equal reverse()'s."""

import pytest
from django.conf import settings
from django.core import signing
from django.test import override_settings
from django.urls import reverse
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from consent.tokens import (
    PREFERENCES,
    UNSUBSCRIBE,
    link_make,
    preferences_link,
    token_make,
    token_read,
    unsubscribe_headers,
)


@hypothesis_settings(deadline=None)  # the first call loads the URLconf
@given(
    customer_id=st.integers(min_value=1, max_value=2**62),
    topic_key=st.text(min_size=1, max_size=64),
)
def test_a_link_is_what_reverse_gives_for_its_token(customer_id, topic_key):
    # given any customer and topic, when a link is made
    link = link_make(
        purpose=UNSUBSCRIBE, customer_id=customer_id, channel="email", topic_key=topic_key
    )
    # then it is the public URL plus the reversed page path for its own token
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert link == settings.JOURNEYLINE_PUBLIC_URL + reverse("consent:unsubscribe", args=[token])
    claims = token_read(purpose=UNSUBSCRIBE, token=token)
    assert (claims.customer_id, claims.topic_key) == (customer_id, topic_key)


@override_settings(JOURNEYLINE_PUBLIC_URL="https://first.test")
def test_a_changed_public_url_is_honoured_at_once():
    # given links already made on one public URL
    assert preferences_link(customer_id=7).startswith("https://first.test/")
    # when the setting changes, then the next links use the new one
    with override_settings(JOURNEYLINE_PUBLIC_URL="https://second.test"):
        link = preferences_link(customer_id=7)
        header = unsubscribe_headers(customer_id=7, topic_key="news")["List-Unsubscribe"]
    assert link.startswith("https://second.test/")
    assert header.startswith("<https://second.test/")
    token = link.rstrip("/").rsplit("/", 1)[1]
    assert token_read(purpose=PREFERENCES, token=token).customer_id == 7


@hypothesis_settings(deadline=None)
@given(
    customer_id=st.integers(min_value=1, max_value=2**62),
    topic_key=st.one_of(st.none(), st.text(min_size=1, max_size=64)),
)
def test_a_token_is_what_django_signing_makes_and_reads(customer_id, topic_key):
    # given any claims, when a token is made with the prepared key
    token = token_make(
        purpose=UNSUBSCRIBE, customer_id=customer_id, channel="email", topic_key=topic_key
    )
    # then django.core.signing reads it for that page only, with the same claims
    payload = {"c": customer_id, "ch": "email", **({"t": topic_key} if topic_key else {})}
    assert signing.loads(token, salt=UNSUBSCRIBE) == payload
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt=PREFERENCES)


def test_a_token_is_signed_with_the_current_secret_key():
    # given a token made with the old key (its prepared HMAC cached)
    token_make(purpose=PREFERENCES, customer_id=7)
    # when the secret key changes, a new token is signed with the new key
    with override_settings(SECRET_KEY="another-secret-key-for-this-test-only-0123456789"):
        token = token_make(purpose=PREFERENCES, customer_id=7)
        assert signing.loads(token, salt=PREFERENCES) == {"c": 7}
    # and the old key refuses it
    with pytest.raises(signing.BadSignature):
        signing.loads(token, salt=PREFERENCES)
