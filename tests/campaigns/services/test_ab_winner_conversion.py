"""A conversion-rate winner through the real path: the test sent over SMTP, conversions
ingested through the Segment API, the tick picks on them, the rest gets the winner."""

import datetime as dt

import pytest
from django.test import Client

from campaigns.models import CampaignStatusChange, Message, MessageStatus
from campaigns.selectors_broadcasts import campaign_results
from campaigns.services.broadcasts import campaign_start, campaigns_tick
from customers.models import Event
from tests.campaigns.services.conftest import NOW, granted_customer
from tests.campaigns.services.test_ab_winner import HOUR, ab_campaign, subjects
from tests.customers.ingest.helpers import post

pytestmark = pytest.mark.django_db


def track(user_id, event, **fields):
    return {"type": "track", "userId": user_id, "event": event, **fields}


def test_the_variant_whose_readers_convert_wins_and_the_rest_gets_it(
    backends, topic, basic_auth, django_capture_on_commit_callbacks, time_machine
):
    # given 40 consenting customers and an A/B test on conversions ("Order Completed"
    # within 24 h of the message) on half of those outside a 20% holdout
    time_machine.move_to(NOW, tick=False)
    for _ in range(40):
        granted_customer(topic)
    campaign, _, version_b = ab_campaign(
        metric="converted",
        holdout=20,
        test_percent=50,
        conversion_event="Order Completed",
        conversion_window_hours=24,
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign_start(campaign_id=campaign.pk, actor="ann", now=NOW)
    messages = Message.objects.filter(campaign_id=campaign.pk).select_related("customer")
    readers = {
        variant: [m.customer.external_id for m in messages.filter(variant=variant)]
        for variant in ("A", "B", "holdout", "rest")
    }
    assert min(len(ids) for ids in readers.values()) > 0
    assert len(backends.envelopes) == len(readers["A"]) + len(readers["B"])
    # given A's readers all clicked (so A would win on clicks) but did not buy: one viewed
    # a product, one bought the day before the campaign
    Message.objects.filter(variant="A").update(status=MessageStatus.CLICKED)
    noise = [
        track(readers["A"][0], "Product Viewed"),
        track(
            readers["A"][-1], "Order Completed", timestamp=(NOW - dt.timedelta(days=1)).isoformat()
        ),
    ]
    # when every reader of B, and the holdout, buy half an hour later, sent to the ingest API
    time_machine.move_to(NOW + HOUR / 2, tick=False)
    bought = [track(user_id, "Order Completed") for user_id in readers["B"] + readers["holdout"]]
    with django_capture_on_commit_callbacks(execute=True):
        response = post(Client(), "/v1/batch", {"batch": [*bought, *noise]}, basic_auth)
    assert response.status_code == 200, response.content
    assert Event.objects.filter(name="Order Completed").count() == len(bought) + 1
    # then the results count B's readers as converted, and nobody of A
    results = {row.variant: row for row in campaign_results(campaign=campaign)}
    assert (results["A"].converted, results["B"].converted) == (0, len(readers["B"]))
    assert results["B"].uplift == pytest.approx(0.0)  # the holdout bought as much
    # when the tick runs once the window after the last test message has passed
    time_machine.move_to(NOW + HOUR, tick=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_tick(now=NOW + HOUR).winners == 1
    # then B wins on the conversion rate, and the audit trail has the rates
    campaign.refresh_from_db()
    assert campaign.winner == "B"
    audit = CampaignStatusChange.objects.get(campaign=campaign, data__has_key="winner")
    assert audit.data["metric"] == "converted"
    assert audit.data["rates"] == {"A": 0.0, "B": 1.0}
    assert "winner on conversion rate: B (best rate)" in audit.reason
    # and every one of the rest was sent B's version over SMTP, once
    rest = messages.filter(variant="rest")
    assert set(rest.values_list("status", "template_version_id")) == {
        (MessageStatus.SENT, version_b.pk)
    }
    tested = len(readers["A"]) + len(readers["B"])
    assert subjects(backends.envelopes[tested:]) == ["Version B"] * len(readers["rest"])
    assert len(backends.envelopes) == 40 - len(readers["holdout"])
