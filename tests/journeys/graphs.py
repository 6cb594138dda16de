"""Graphs for the journeys tests: the documented example and small builders."""

import copy
import itertools
import json
import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "journeys.md"


def documented_example() -> dict:
    """The cart-abandonment graph of docs/journeys.md, so the docs cannot drift."""
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    graphs = [json.loads(block) for block in blocks if block.lstrip().startswith('{\n  "schema"')]
    assert len(graphs) == 1
    return graphs[0]


class Templates:
    """A template catalog of the test's own: template id -> channel."""

    def __init__(self, channels: dict[int, str] | None = None) -> None:
        self.channels = (
            channels if channels is not None else {1: "email", 2: "push", 3: "sms", 4: "webhook"}
        )

    def channel_of(self, template_id):
        return self.channels.get(template_id)


def step(step_id: str, kind: str, config: dict | None = None, **exits: str) -> dict:
    return {"id": step_id, "kind": kind, "config": config or {}, "exits": exits}


def event_trigger(event: str = "Signed Up", **exits: str) -> dict:
    return step("start", "trigger", {"type": "event", "event": event}, **exits)


def graph(*steps: dict) -> dict:
    return {"schema": 1, "steps": copy.deepcopy(list(steps))}


def linear(*middle: dict) -> dict:
    """trigger -> middle steps in order -> exit ``done`` (each step's ``next`` filled in)."""
    chain = [event_trigger(), *copy.deepcopy(list(middle)), step("done", "exit")]
    for current, following in itertools.pairwise(chain):
        if not current["exits"]:
            current["exits"] = {"next": following["id"]}
    return graph(*chain)
