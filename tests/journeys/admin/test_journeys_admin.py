"""The journeys admin as a marketer uses it, logged in as a staff user."""

import json

import pytest
from django.contrib.auth import get_user_model

from journeys.admin.diagram import journey_svg
from journeys.models import Enrolment, Journey, JourneyVersion
from journeys.services.enrolments import journey_enrol
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import documented_example, linear, step

pytestmark = pytest.mark.django_db

WAITING = linear(step("pause", "wait", {"duration": {"days": 1}}))


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("marketer", "m@example.com", None)
    client.force_login(user)
    return client


def form_data(**overrides):
    data = {
        "name": "Welcome",
        "description": "",
        "entry_policy": "again_after_leaving",
        "entry_period_days": "",
        "exit_events": "[]",
        "exit_segments": "[]",
        "goal_event": "",
        "goal_window_hours": "",
        "holdout_share": "0",
        "draft_graph": json.dumps(WAITING),
    }
    return {**data, **overrides}


def test_a_marketer_creates_a_draft_and_publishes_it(admin_client):
    response = admin_client.post("/admin/journeys/journey/add/", form_data())
    assert response.status_code == 302, response.content
    journey = Journey.objects.get()
    assert (journey.status, journey.draft_graph["steps"][1]["id"]) == ("draft", "pause")

    response = admin_client.post(
        "/admin/journeys/journey/",
        {"action": "publish", "_selected_action": [journey.pk]},
        follow=True,
    )

    assert "Welcome: published v1." in response.content.decode()
    journey.refresh_from_db()
    assert (journey.status, journey.live_version.number) == ("live", 1)


def test_publishing_a_broken_draft_says_why_and_publishes_nothing(admin_client):
    broken = linear(step("pause", "wait", {"duration": {"days": 0}}))
    admin_client.post("/admin/journeys/journey/add/", form_data(draft_graph=json.dumps(broken)))
    journey = Journey.objects.get()

    page = admin_client.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()
    assert "<strong>pause</strong> · config.duration: must be longer than zero" in page
    assert 'data-step="pause"' in page  # the draft diagram marks the step

    response = admin_client.post(
        "/admin/journeys/journey/",
        {"action": "publish", "_selected_action": [journey.pk]},
        follow=True,
    )
    assert "Welcome: not published, 1 problem(s)" in response.content.decode()
    assert JourneyVersion.objects.count() == 0


def test_a_draft_graph_that_is_not_an_object_is_a_form_error(admin_client):
    response = admin_client.post("/admin/journeys/journey/add/", form_data(draft_graph="[1]"))
    assert response.status_code == 200
    assert "must be an object with schema and steps" in response.content.decode()
    assert Journey.objects.count() == 0


def test_the_change_page_shows_the_live_diagram_with_counts_and_results(admin_client, outbox):
    journey = live_journey(WAITING)
    for customer in CustomerFactory.create_batch(3):
        journey_enrol(journey=journey, customer=customer)

    page = admin_client.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()

    assert "in 3 · waiting 3 · on 0" in page  # the wait step
    assert "in 3 · waiting 0 · on 3" in page  # the trigger
    assert "<td>in the journey</td><td>3</td><td>0</td><td>0.0%</td>" in page
    assert "cdn" not in page.lower() and '<script src="http' not in page


def test_pause_and_resume_actions_report_what_they_did(admin_client):
    journey = live_journey(WAITING)
    response = admin_client.post(
        "/admin/journeys/journey/",
        {"action": "pause", "_selected_action": [journey.pk]},
        follow=True,
    )
    assert "Paused: Journey." in response.content.decode()
    response = admin_client.post(
        "/admin/journeys/journey/",
        {"action": "pause", "_selected_action": [journey.pk]},
        follow=True,
    )
    assert "a paused journey cannot become paused" in response.content.decode()
    journey.refresh_from_db()
    assert journey.status == "paused"


def test_an_enrolment_page_lists_its_transitions_and_cannot_be_changed(admin_client, outbox):
    journey = live_journey(WAITING)
    enrolment = journey_enrol(journey=journey, customer=CustomerFactory(external_id="ann"))

    listing = admin_client.get("/admin/journeys/enrolment/?q=ann").content.decode()
    assert f"/admin/journeys/enrolment/{enrolment.pk}/change/" in listing
    page = admin_client.get(f"/admin/journeys/enrolment/{enrolment.pk}/change/").content.decode()
    assert "enrolled" in page and "pause" in page
    response = admin_client.post(f"/admin/journeys/enrolment/{enrolment.pk}/change/", {})
    assert response.status_code == 403
    assert Enrolment.objects.get().status == "waiting"


def test_the_diagram_escapes_what_marketers_type():
    graph = documented_example()
    graph["steps"][0]["id"] = "<script>x</script>"
    graph["steps"][0]["label"] = "a & b"
    svg = journey_svg(graph)
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_the_diagram_counts_a_send_steps_messages_by_how_far_they_got(admin_client):
    from campaigns.models import Message
    from tests.campaigns.factories import TemplateVersionFactory

    journey = live_journey(
        linear(step("mail", "send", {"channel": "email", "template": 1, "topic": "news"}))
    )
    version = TemplateVersionFactory()
    for n, status in enumerate(["queued", "sent", "opened", "clicked"]):
        Message.objects.create(
            customer=CustomerFactory(),
            channel="email",
            template_version=version,
            topic_key="news",
            idempotency_key=f"journey:x{n}:mail:1",
            origin="journey",
            journey_id=journey.pk,
            step_id="mail",
            status=status,
        )

    page = admin_client.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()

    assert "sent 3 · dlv 2 · open 2 · click 1" in page
