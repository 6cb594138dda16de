"""Publishing a new version, and moving the customers inside by an explicit map."""

import datetime as dt

import pytest

from journeys import clock
from journeys.models import Enrolment, EnrolmentTransition
from journeys.services.enrolments import journey_enrol
from journeys.services.journeys import journey_publish, journey_update
from journeys.services.tick import enrolments_due_tick
from tests.customers.api_helpers import call
from tests.customers.factories import CustomerFactory
from tests.journeys.factories import live_journey
from tests.journeys.graphs import linear, step

pytestmark = pytest.mark.django_db

V1 = linear(step("pause", "wait", {"duration": {"days": 1}}))
V2 = linear(
    step("nap", "wait", {"duration": {"days": 2}}),
    step("hello", "send", {"channel": "email", "template": 1, "topic": "news"}),
)


@pytest.fixture
def two_versions(outbox):
    journey = live_journey(V1)
    now = clock.now()
    inside = journey_enrol(journey=journey, customer=CustomerFactory(), now=now)
    journey_update(journey=journey, changes={"draft_graph": V2})
    journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey, inside, now


def test_new_entrants_take_the_new_version_and_those_inside_finish_on_theirs(two_versions, outbox):
    journey, inside, now = two_versions
    newcomer = journey_enrol(journey=journey, customer=CustomerFactory(), now=now)
    assert (newcomer.version.number, newcomer.current_step) == (2, "nap")

    enrolments_due_tick(now=now + dt.timedelta(days=1))
    inside.refresh_from_db()
    assert (inside.version.number, inside.status) == (1, "completed")
    assert outbox.enqueued == []


def test_a_valid_map_moves_them_keeping_their_due_time(client, write_api_key, two_versions, outbox):
    journey, inside, now = two_versions
    response = call(
        client,
        "post",
        f"/api/v1/journeys/{journey.pk}/migrate/",
        write_api_key,
        {"from_version": 1, "to_version": 2, "step_map": {"pause": "nap"}},
    )

    assert response.status_code == 200, response.json()
    assert response.json() == {"migrated": 1}
    inside.refresh_from_db()
    assert (inside.version.number, inside.current_step) == (2, "nap")
    assert inside.wake_at == now + dt.timedelta(days=1)
    assert EnrolmentTransition.objects.filter(enrolment=inside).last().reason == "migrated"

    enrolments_due_tick(now=now + dt.timedelta(days=1))
    inside.refresh_from_db()
    assert inside.status == "completed"
    assert [m.step_id for m in outbox.enqueued] == ["hello"]


def test_an_invalid_map_names_each_step_and_moves_no_one(client, write_api_key, two_versions):
    journey, inside, _ = two_versions
    url = f"/api/v1/journeys/{journey.pk}/migrate/"

    unmapped = call(
        client, "post", url, write_api_key, {"from_version": 1, "to_version": 2, "step_map": {}}
    )
    wrong_kind = call(
        client,
        "post",
        url,
        write_api_key,
        {"from_version": 1, "to_version": 2, "step_map": {"pause": "hello"}},
    )

    assert unmapped.status_code == wrong_kind.status_code == 400
    assert unmapped.json() == {
        "step_map": [
            {
                "step": "pause",
                "field": "step_map",
                "message": "customers wait here: map it to a step of the new version",
            }
        ]
    }
    assert wrong_kind.json()["step_map"][0] == {
        "step": "pause",
        "field": "step_map",
        "message": "a wait step cannot map to the send step 'hello'",
    }
    inside.refresh_from_db()
    assert (inside.version.number, inside.current_step) == (1, "pause")
    assert not EnrolmentTransition.objects.filter(reason="migrated").exists()
    assert Enrolment.objects.filter(version__number=2).count() == 0
