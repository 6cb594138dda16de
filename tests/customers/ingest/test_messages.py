"""The message parser is pure: given raw Segment JSON, then a normalised message or faults."""

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from customers.ingest.messages import (
    InvalidMessage,
    normalise_phone,
    parse_batch,
    parse_message,
)

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def fields_of(invalid: InvalidMessage) -> list[tuple]:
    return [(error.index, error.field) for error in invalid.errors]


def test_track_is_normalised():
    message = parse_message(
        {
            "type": "track",
            "userId": 42,
            "event": " Order Completed ",
            "properties": {"total": 10},
            "messageId": "m-1",
            "timestamp": "2026-11-22T11:00:00Z",
        },
        index=None,
        received_at=NOW,
    )
    assert message.user_id == "42"
    assert message.name == "Order Completed"
    assert message.properties == {"total": 10}
    assert message.timestamp == dt.datetime(2026, 11, 22, 11, 0, tzinfo=dt.UTC)


def test_sent_at_corrects_a_client_clock_that_is_an_hour_fast():
    # The client's clock is 1 h ahead: it says the event happened at 13:00 and was sent
    # at 13:05; we received it at 12:05 by our clock. The event happened at 12:00.
    message = parse_message(
        {
            "type": "track",
            "userId": "u",
            "event": "E",
            "timestamp": "2026-11-22T13:00:00+00:00",
            "sentAt": "2026-11-22T13:05:00+00:00",
        },
        index=None,
        received_at=NOW + dt.timedelta(minutes=5),
    )
    assert message.timestamp == NOW


def test_batch_level_sent_at_applies_to_every_message():
    messages = parse_batch(
        {
            "sentAt": "2026-11-22T13:05:00Z",
            "batch": [
                {"type": "track", "userId": "u", "event": "E", "timestamp": "2026-11-22T13:00:00Z"}
            ],
        },
        received_at=NOW + dt.timedelta(minutes=5),
    )
    assert messages[0].timestamp == NOW


def test_missing_timestamp_means_received_now():
    message = parse_message(
        {"type": "page", "anonymousId": "a", "name": "Home"}, index=None, received_at=NOW
    )
    assert message.timestamp == NOW
    assert message.name == "Home"


def test_identify_reads_email_phone_zone_locale_and_device():
    message = parse_message(
        {
            "type": "identify",
            "userId": "u",
            "traits": {"email": " Ada@Example.COM ", "phone": "+31 6 1234-5678"},
            "context": {
                "timezone": "Europe/Amsterdam",
                "locale": "nl-NL",
                "device": {"token": "tok", "type": "ios", "id": "app"},
            },
        },
        index=None,
        received_at=NOW,
    )
    assert message.email == "ada@example.com"
    assert message.phone == "+31612345678"
    assert message.timezone == "Europe/Amsterdam"
    assert message.locale == "nl-NL"
    assert message.device == {"token": "tok", "platform": "ios", "app_id": "app"}


def test_identify_takes_traits_from_context_when_top_level_has_none():
    message = parse_message(
        {"type": "identify", "userId": "u", "context": {"traits": {"plan": "pro"}}},
        index=None,
        received_at=NOW,
    )
    assert message.traits == {"plan": "pro"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"type": "track", "event": "E"}, "userId"),
        ({"type": "track", "userId": "u"}, "event"),
        ({"type": "track", "userId": "u", "event": ""}, "event"),
        ({"type": "track", "userId": {"a": 1}, "event": "E"}, "userId"),
        ({"type": "track", "userId": "u", "event": "E", "properties": []}, "properties"),
        ({"type": "track", "userId": "u", "event": "E", "context": "x"}, "context"),
        ({"type": "track", "userId": "u", "event": "E", "timestamp": "yesterday"}, "timestamp"),
        ({"type": "track", "userId": "u", "event": "E", "messageId": 5}, "messageId"),
        ({"type": "track", "userId": "u" * 256, "event": "E"}, "userId"),
        ({"type": "alias", "userId": "u"}, "previousId"),
        ({"type": "alias", "previousId": "p"}, "userId"),
        ({"type": "group", "userId": "u"}, "groupId"),
        ({"type": "identify", "userId": "u", "traits": {"email": "nope"}}, "traits.email"),
        ({"type": "identify", "userId": "u", "traits": {"phone": "12"}}, "traits.phone"),
        (
            {"type": "track", "userId": "u", "event": "E", "context": {"timezone": "Mars/Base"}},
            "context.timezone",
        ),
        ({"type": "launch", "userId": "u"}, "type"),
    ],
)
def test_invalid_messages_name_the_field(raw, field):
    with pytest.raises(InvalidMessage) as caught:
        parse_message(raw, index=3, received_at=NOW)
    assert (3, field) in fields_of(caught.value)


def test_batch_reports_every_invalid_message_by_index():
    with pytest.raises(InvalidMessage) as caught:
        parse_batch(
            {
                "batch": [
                    {"type": "track", "userId": "u", "event": "ok"},
                    {"type": "track", "userId": "u"},
                    "not an object",
                ]
            },
            received_at=NOW,
        )
    assert fields_of(caught.value) == [(1, "event"), (2, "")]


@pytest.mark.parametrize("body", [[], {"batch": {}}, {"batch": []}, {"batch": [], "context": 3}])
def test_batch_shape_is_checked(body):
    with pytest.raises(InvalidMessage):
        parse_batch(body, received_at=NOW)


def test_batch_context_is_shared_and_message_context_wins():
    [message] = parse_batch(
        {
            "context": {"library": {"name": "x"}, "ip": "1.1.1.1"},
            "batch": [{"type": "track", "userId": "u", "event": "E", "context": {"ip": "2.2.2.2"}}],
        },
        received_at=NOW,
    )
    assert message.context == {"library": {"name": "x"}, "ip": "2.2.2.2"}


@given(st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))
def test_any_e164_number_survives_normalisation(number):
    assert normalise_phone(number) == number
