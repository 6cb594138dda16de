"""The pure journey engine: ``advance(graph, state, input, now) -> (new state, effects)``."""

from journeys.engine.core import (
    FINISHED,
    CallWebhook,
    Effect,
    Enrol,
    EventReceived,
    Exit,
    ExitRequested,
    Input,
    SendMessage,
    State,
    Status,
    Timer,
    Transition,
    UpdateTraits,
    Wake,
    advance,
)
from journeys.engine.facts import CustomerFacts, EventFact
from journeys.engine.graph import InvalidGraph, Problem, validate_graph

__all__ = [
    "FINISHED",
    "CallWebhook",
    "CustomerFacts",
    "Effect",
    "Enrol",
    "EventFact",
    "EventReceived",
    "Exit",
    "ExitRequested",
    "Input",
    "InvalidGraph",
    "Problem",
    "SendMessage",
    "State",
    "Status",
    "Timer",
    "Transition",
    "UpdateTraits",
    "Wake",
    "advance",
    "validate_graph",
]
