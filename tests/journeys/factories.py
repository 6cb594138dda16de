import datetime as dt

from journeys.engine.graph import normalize_graph
from journeys.models import Journey
from journeys.services.journeys import journey_create, journey_publish
from tests.customers.factories import CustomerFactory  # noqa: F401 - re-exported for tests


def live_journey(graph: dict, *, name: str = "Journey", **settings) -> Journey:
    journey = journey_create(name=name, graph=normalize_graph(graph), **settings)
    journey_publish(journey=journey, by="tests")
    journey.refresh_from_db()
    return journey


def later(moment: dt.datetime, **delta) -> dt.datetime:
    return moment + dt.timedelta(**delta)
