import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command

from consent.models import ConsentEvent, ConsentState
from consent.services.ledger import ConsentError, consent_import
from tests.consent.factories import CustomerFactory, TopicFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_an_import_appends_every_row_and_rebuilds_the_state():
    first, second = CustomerFactory(), CustomerFactory()
    TopicFactory(key="deals", channels=["email"], double_opt_in=True)

    count = consent_import(
        rows=[
            {"customer_id": first.pk, "channel": "email", "topic": "deals", "action": "grant"},
            {"customer_id": second.pk, "channel": "email", "topic": None, "action": "withdraw",
             "occurred_at": NOW - dt.timedelta(days=3)},
        ],
        now=NOW,
    )  # fmt: skip

    assert count == 2
    assert set(ConsentState.objects.values_list("customer_id", "action")) == {
        (first.pk, "grant"),  # imported double opt-in grants count as confirmed
        (second.pk, "withdraw"),
    }


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"channel": "fax", "topic": None, "action": "grant"}, "1.channel"),
        ({"channel": "email", "topic": "ghost", "action": "grant"}, "1.topic"),
        ({"channel": "email", "topic": None, "action": "pending"}, "1.action"),
        (
            {"channel": "email", "topic": None, "action": "grant", "customer_id": 10**9},
            "1.customer_id",
        ),
    ],
)
def test_one_bad_row_refuses_the_whole_import(row, field):
    customer = CustomerFactory()
    TopicFactory(key="deals", channels=["email"])
    good = {"customer_id": customer.pk, "channel": "email", "topic": "deals", "action": "grant"}

    with pytest.raises(ConsentError) as error:
        consent_import(rows=[good, {"customer_id": customer.pk, **row}], now=NOW)

    assert error.value.field == field
    assert ConsentEvent.objects.count() == 0


def test_the_demo_seed_gives_mixed_consent_once_and_prints_a_link():
    CustomerFactory.create_batch(40)
    out = StringIO()

    call_command("consent_demo_seed", stdout=out)
    rows = ConsentEvent.objects.count()
    call_command("consent_demo_seed", stdout=out)

    assert rows > 0
    assert ConsentEvent.objects.count() == rows
    assert set(ConsentEvent.objects.values_list("action", flat=True)) <= {"grant", "withdraw"}
    assert (
        out.getvalue().count("preference centre: http://localhost:8000/consent/preferences/") == 2
    )
