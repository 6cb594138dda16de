"""Building a journey in the admin with typed forms per step, without writing JSON."""

import pytest
from django.contrib.auth import get_user_model

from journeys import ports as ports_module
from journeys.models import Journey
from journeys.ports import CampaignTemplates, ports
from tests.campaigns.factories import MessageTemplateFactory
from tests.consent.factories import TopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("builder", "b@example.com", None)
    client.force_login(user)
    return client


@pytest.fixture(autouse=True)
def campaign_templates():
    previous = ports.templates
    ports_module.register_template_catalog(CampaignTemplates())
    yield
    ports_module.register_template_catalog(previous)


@pytest.fixture
def journey():
    return Journey.objects.create(name="Welcome", draft_graph={})


def add(client, journey, kind, **fields):
    return client.post(f"/admin/journeys/journey/{journey.pk}/steps/add/{kind}/", fields)


def test_a_marketer_builds_and_publishes_a_journey_with_step_forms(admin_client, journey):
    welcome = MessageTemplateFactory(name="Welcome mail", channel="email")
    TopicFactory(key="news")

    form = admin_client.get(
        f"/admin/journeys/journey/{journey.pk}/steps/add/send/"
    ).content.decode()
    assert "Welcome mail (email)" in form and "News" in form

    assert add(admin_client, journey, "exit", id="done").status_code == 302
    assert (
        add(
            admin_client,
            journey,
            "send",
            id="hello",
            template=welcome.pk,
            topic="news",
            exit_next="done",
        ).status_code
        == 302
    )
    assert (
        add(
            admin_client, journey, "wait", id="pause", mode="duration", hours=1, exit_next="hello"
        ).status_code
        == 302
    )
    assert (
        add(
            admin_client,
            journey,
            "trigger",
            id="start",
            type="event",
            event="Signed Up",
            filters="[]",
            exit_next="pause",
        ).status_code
        == 302
    )

    journey.refresh_from_db()
    steps = {step["id"]: step for step in journey.draft_graph["steps"]}
    assert steps["hello"] == {
        "id": "hello",
        "kind": "send",
        "exits": {"next": "done"},
        "config": {"channel": "email", "template": welcome.pk, "topic": "news"},
    }
    assert steps["pause"]["config"] == {"duration": {"hours": 1}}
    assert steps["start"]["config"] == {"type": "event", "event": "Signed Up"}

    response = admin_client.post(
        "/admin/journeys/journey/",
        {"action": "publish", "_selected_action": [journey.pk]},
        follow=True,
    )
    assert "Welcome: published v1." in response.content.decode()


def test_a_step_problem_is_shown_beside_its_field_and_nothing_is_saved(admin_client, journey):
    response = add(admin_client, journey, "wait", id="pause", mode="duration", hours=0)

    assert response.status_code == 200
    page = response.content.decode()
    assert "must be an object of days, hours, minutes, seconds" in page
    journey.refresh_from_db()
    assert journey.draft_graph == {}


def test_renaming_a_step_follows_its_exits_and_removing_one_drops_them(admin_client, journey):
    add(admin_client, journey, "exit", id="done")
    add(admin_client, journey, "wait", id="pause", mode="duration", days=2, exit_next="done")

    response = admin_client.post(
        f"/admin/journeys/journey/{journey.pk}/steps/done/",
        {"id": "finished", "reason": "all done"},
    )
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.draft_graph["steps"][1]["exits"] == {"next": "finished"}

    admin_client.post(f"/admin/journeys/journey/{journey.pk}/steps/finished/delete/")
    journey.refresh_from_db()
    assert [(s["id"], s["exits"]) for s in journey.draft_graph["steps"]] == [("pause", {})]


def test_split_branches_become_exits(admin_client, journey):
    add(admin_client, journey, "exit", id="done")
    response = add(
        admin_client,
        journey,
        "split",
        id="ab",
        branches="a 45\nb 45\ncontrol 10 holdout",
        exit_a="done",
        exit_b="done",
        exit_control="done",
    )
    assert response.status_code == 302
    journey.refresh_from_db()
    split = journey.draft_graph["steps"][1]
    assert split["config"]["branches"][2] == {"name": "control", "weight": 10, "holdout": True}
    assert split["exits"] == {"a": "done", "b": "done", "control": "done"}
    page = admin_client.get(f"/admin/journeys/journey/{journey.pk}/steps/ab/").content.decode()
    assert "control 10 holdout" in page
