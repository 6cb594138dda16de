"""What other apps add to the demo, run by ``demo_load`` once the store's events are in.

An app registers a step in its ``AppConfig.ready()``::

    from customers.demo.steps import demo_steps
    demo_steps.register("segments", "segments.demo.load")

A step receives a ``DemoRun`` and returns lines for the box ``demo_load`` prints at the end
(``[]`` for none). It must be safe to run again: ``make demo`` may be run any number of times.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.utils.module_loading import import_string

from customers.demo.credentials import DemoCredentials
from customers.demo.store import DemoStore


@dataclass(frozen=True, slots=True)
class DemoRun:
    url: str  # the running Journeyline, without a trailing slash
    store: DemoStore  # the customers, their ground-truth types and their messages
    credentials: DemoCredentials


DemoStep = Callable[[DemoRun], list[str]]


class DemoStepRegistry:
    def __init__(self) -> None:
        self._steps: dict[str, DemoStep] = {}

    def register(self, name: str, step: DemoStep | str) -> None:
        if isinstance(step, str):
            step = import_string(step)
        self._steps[name] = step

    def unregister(self, name: str) -> None:
        self._steps.pop(name, None)

    def items(self) -> list[tuple[str, DemoStep]]:
        return list(self._steps.items())


demo_steps = DemoStepRegistry()
