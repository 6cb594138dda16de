"""Links to customers' pages: the URL reversed once per page must equal reverse()'s."""

from django.conf import settings
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
