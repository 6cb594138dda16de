import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from campaigns.models import Campaign, CampaignVariant, Message
from campaigns.services.broadcasts import campaign_send
from tests.campaigns.services.conftest import NOW, granted_customer, published_version
from tests.consent.factories import TopicFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/campaigns/campaign/"


@pytest.fixture
def topic(db):
    return TopicFactory(key="news", channels=["email", "sms", "push"])


def a_campaign(holdout=0):
    version = published_version()
    campaign = Campaign.objects.create(
        name="Spring sale",
        template=version.template,
        topic_key="news",
        holdout_percent=holdout,
        conversion_event="Order Completed",
    )
    for key in "AB":
        CampaignVariant.objects.create(
            campaign=campaign, key=key, template_version=version, weight=1
        )
    return campaign


def client_for(user):
    client = Client()
    client.force_login(user)
    return client


def test_a_campaign_page_shows_progress_results_and_a_chart(admin_user, topic):
    # given a sent campaign with a holdout
    for _ in range(20):
        granted_customer(topic)
    campaign = a_campaign(holdout=20)
    campaign_send(campaign_id=campaign.pk, actor="ann", now=NOW)
    # when a marketer opens it
    page = client_for(admin_user).get(f"{CHANGELIST}{campaign.pk}/change/")
    # then progress, the per-variant table, an inline SVG chart and the audit trail show
    assert page.status_code == 200
    html = page.content.decode()
    assert "Messages by status" in html and "queued" in html
    assert "Uplift over holdout" in html
    assert "<svg" in html and "holdout" in html
    assert "run 1:" in html
    # and the list shows how far it got
    listing = client_for(admin_user).get(CHANGELIST).content.decode()
    assert "0 of " in listing


def test_the_start_action_sends_and_says_what_it_did(admin_user, topic):
    # given a draft campaign and two consenting customers
    granted_customer(topic)
    granted_customer(topic)
    campaign = a_campaign()
    # when an approver starts it from the list
    response = client_for(admin_user).post(
        CHANGELIST, {"action": "start", "_selected_action": [campaign.pk]}, follow=True
    )
    # then it is sending, with two messages, and the page says so
    assert Campaign.objects.get().status == Campaign.Status.SENDING
    assert Message.objects.count() == 2
    assert "Spring sale: started (sending)." in response.content.decode()


def test_a_refused_start_is_reported_and_writes_nothing(admin_user, topic):
    campaign = a_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(topic_key="missing")
    response = client_for(admin_user).post(
        CHANGELIST, {"action": "start", "_selected_action": [campaign.pk]}, follow=True
    )
    assert "not started: no such topic" in response.content.decode()
    assert Message.objects.count() == 0
    assert Campaign.objects.get().status == Campaign.Status.DRAFT


def test_a_marketer_without_approval_cannot_start_a_campaign(topic):
    # given a staff user who may edit campaigns but not approve them
    user = User.objects.create_user("marketer", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="campaigns",
            codename__in=["view_campaign", "change_campaign"],
        )
    )
    granted_customer(topic)
    campaign = a_campaign()
    client = client_for(user)
    # when they try the start action
    assert 'value="start"' not in client.get(CHANGELIST).content.decode()
    client.post(CHANGELIST, {"action": "start", "_selected_action": [campaign.pk]})
    # then nothing was sent
    assert Campaign.objects.get().status == Campaign.Status.DRAFT
    assert Message.objects.count() == 0


def test_the_form_refuses_an_unknown_topic_with_a_field_error(admin_user, topic):
    version = published_version()
    response = client_for(admin_user).post(
        f"{CHANGELIST}add/",
        {
            "name": "Bad",
            "template": version.template_id,
            "topic_key": "nope",
            "schedule": "now",
            "holdout_percent": 0,
            "conversion_window_hours": 72,
            "test_window_hours": 4,
            "winner_metric": "clicked",
            "variants-TOTAL_FORMS": 1,
            "variants-INITIAL_FORMS": 0,
            "variants-MIN_NUM_FORMS": 1,
            "variants-MAX_NUM_FORMS": 1000,
            "variants-0-key": "A",
            "variants-0-template_version": version.pk,
            "variants-0-weight": 1,
            "status_changes-TOTAL_FORMS": 0,
            "status_changes-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "No such topic." in response.content.decode()
    assert Campaign.objects.count() == 0


def test_a_message_page_explains_the_consent_decision(admin_user, topic):
    # given a message the gate refused (no consent: no provider is contacted)
    from campaigns.services.dispatch import messages_dispatch
    from campaigns.services.outbox import message_enqueue
    from tests.campaigns.factories import CustomerFactory

    message = message_enqueue(
        customer_id=CustomerFactory().pk,
        channel="email",
        template_version_id=published_version().pk,
        topic_key="news",
        idempotency_key="m",
        now=NOW,
    )
    messages_dispatch(message_ids=[message.pk], now=NOW)
    page = client_for(admin_user).get(f"/admin/campaigns/message/{message.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "never agreed to it" in html
    assert "Status history" in html


def test_starting_a_big_audience_returns_after_its_first_chunk_and_a_task_writes_the_rest(
    admin_user, topic, settings, django_capture_on_commit_callbacks
):
    # given chunks of 3 and a draft campaign to 8 consenting customers
    settings.CAMPAIGN_SNAPSHOT_CHUNK = 3
    for _ in range(8):
        granted_customer(topic)
    campaign = a_campaign()
    client = client_for(admin_user)
    # when an approver starts it (the tasks it hands over run once the request commits)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            CHANGELIST, {"action": "start", "_selected_action": [campaign.pk]}, follow=True
        )
    # then the request wrote the first chunk only, and says the campaign is sending
    assert "Spring sale: started (sending)." in response.content.decode()
    assert Message.objects.count() == 3
    # when the handed-over work runs (dispatch of the first chunk, then the rest's task)
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    # then every customer has a message and the audience is written
    assert Message.objects.count() == 8
    campaign.refresh_from_db()
    assert campaign.snapshot_after is None
