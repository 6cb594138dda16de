import datetime as dt

import pytest

from campaigns.rendering import ContentSource, TemplateError, VersionSource, build_context, render

NOW = dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC)


def render_body(source: str, *, locale="en", timezone="", **event_properties) -> str:
    version = VersionSource(
        id=None,
        channel="sms",
        default_locale="en",
        contents=(ContentSource("en", {"body": source}),),
    )
    context = build_context(
        customer={"id": 1, "locale": locale, "timezone": timezone, "traits": {}},
        now=NOW,
        event={"name": "Order Completed", "properties": event_properties},
        default_timezone="UTC",
    )
    return render(version, context).body


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "€1,234.50"),
        ("en-US", "€1,234.50"),
        ("de-DE", "1.234,50\xa0€"),
        ("fr", "1\u202f234,50\xa0€"),
    ],
)
def test_money_follows_the_customer_locale(locale, expected):
    assert (
        render_body("{{ event.properties.total|money('EUR') }}", locale=locale, total="1234.5")
        == expected
    )


def test_money_takes_an_explicit_locale():
    assert render_body("{{ 5|money('USD', 'en-US') }}", locale="de") == "$5.00"


def test_money_refuses_what_is_not_an_amount():
    with pytest.raises(TemplateError) as error:
        render_body("{{ 'lots'|money('EUR') }}")
    assert "not an amount" in error.value.message


def test_dates_are_shown_in_the_customer_zone():
    # 23:30 UTC is already the next day in Tokyo
    assert render_body("{{ now|date }}", timezone="Asia/Tokyo") == "Nov 23, 2026"
    assert render_body("{{ now|date }}", timezone="America/New_York") == "Nov 22, 2026"
    assert (
        render_body("{{ now|datetime('short') }}", timezone="Asia/Tokyo")
        == "11/23/26, 8:30\u202fAM"
    )


def test_iso_strings_from_event_properties_are_dates():
    body = render_body(
        "{{ event.properties.at|date('long') }}",
        locale="fr",
        timezone="Europe/Paris",
        at="2026-12-31T23:30:00Z",
    )
    assert body == "1 janvier 2027"


def test_unknown_zone_falls_back_to_utc():
    assert render_body("{{ now|date }}", timezone="Mars/Olympus") == "Nov 22, 2026"


@pytest.mark.parametrize(
    ("count", "expected"), [(0, "0 items"), (1, "1 item"), (2, "2 items"), ("1", "1 item")]
)
def test_pluralize(count, expected):
    assert (
        render_body("{{ n }} item{{ n|pluralize }}".replace("n", "event.properties.n"), n=count)
        == expected
    )


def test_pluralize_with_both_words():
    assert render_body("{{ 3|pluralize('person', 'people') }}") == "people"
    assert render_body("{{ [1]|pluralize('person', 'people') }}") == "person"
