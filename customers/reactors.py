"""The registry of reactors: what other apps do with each newly ingested event.

An app registers its reactor in ``AppConfig.ready()``::

    from customers.reactors import reactors
    reactors.register("journeys", journeys.reactors.on_events)

A reactor receives a list of ``Event`` rows (with ``customer`` loaded) and runs inside the
transaction that marks them handed over, so its writes and the hand-over commit together:
each event reaches each reactor once, even when the hand-over task is delivered twice.
"""

from collections.abc import Callable, Sequence

from django.utils.module_loading import import_string

Reactor = Callable[[Sequence["Event"]], None]  # noqa: F821


class ReactorRegistry:
    def __init__(self) -> None:
        self._reactors: dict[str, Reactor] = {}

    def register(self, name: str, reactor: Reactor | str) -> None:
        if isinstance(reactor, str):
            reactor = import_string(reactor)
        self._reactors[name] = reactor

    def unregister(self, name: str) -> None:
        self._reactors.pop(name, None)

    def names(self) -> list[str]:
        return list(self._reactors)

    def __iter__(self):
        return iter(list(self._reactors.values()))


reactors = ReactorRegistry()
