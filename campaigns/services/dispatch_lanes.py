"""Sending a batch of prepared deliveries over several connections at once.

A send is mostly waiting: four SMTP round trips (MAIL, RCPT, DATA, the message) during
which the provider works and the worker idles. Rendering stays in the task's thread;
the deliveries of a chunk are then dealt round-robin to a few lanes, each a backend
with its own connection and its own thread, so the waits overlap instead of adding up.

``submit`` returns at once: the task renders the next chunk, and records the previous
one, while this one is on the wire. A lane has one thread, so its chunks go out in order
and its connection is never used by two threads at a time. Each lane keeps its
connection for the whole batch. Lanes never touch the database: they return the
provider's id or the exception for each delivery, in order, and the caller records the
outcomes.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings

from campaigns.channels import Delivery, get_backend
from campaigns.channels.registry import backend_create


class Sending:
    """A chunk on its way: ``results`` waits for it."""

    def __init__(self, size: int, lanes: list[Future] | None = None) -> None:
        self.size = size
        self._lanes = lanes or []
        self._results: list[Any] | None = [] if size == 0 else None

    @classmethod
    def done(cls, results: list[Any]) -> Sending:
        sending = cls(len(results))
        sending._results = results
        return sending

    def results(self) -> list[Any]:
        """The provider's id, or the exception raised, for each delivery in order."""
        if self._results is None:
            results: list[Any] = [None] * self.size
            count = len(self._lanes)
            for lane, future in enumerate(self._lanes):
                results[lane::count] = future.result()
            self._results = results
        return self._results


def _send_each(backend: Any, deliveries: list[Delivery]) -> list[Any]:
    results: list[Any] = []
    for delivery in deliveries:
        try:
            results.append(backend.send(delivery))
        except Exception as error:  # recorded per message by the caller
            results.append(error)
    return results


class SendLanes:
    """Up to ``count`` backends of ``channel``, opened on first use, closed by ``close``."""

    def __init__(self, channel: str, count: int) -> None:
        self.channel = channel
        self.count = max(1, count)
        self._backends: list[Any] = []
        self._threads: list[ThreadPoolExecutor] = []

    def __enter__(self) -> SendLanes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _backend(self, index: int) -> Any:
        while len(self._backends) <= index:
            if self._backends:
                config = settings.JOURNEYLINE_CHANNEL_BACKENDS[self.channel]
                backend = backend_create(self.channel, config)
            else:
                backend = get_backend(self.channel)  # the process's own, as before
            backend.open()
            self._backends.append(backend)
        return self._backends[index]

    def _thread(self, index: int) -> ThreadPoolExecutor:
        while len(self._threads) <= index:
            self._threads.append(
                ThreadPoolExecutor(1, thread_name_prefix=f"send-lane-{len(self._threads)}")
            )
        return self._threads[index]

    def submit(self, deliveries: list[Delivery]) -> Sending:
        """Start sending ``deliveries``; with one lane they are sent before it returns."""
        if not deliveries:
            return Sending(0)
        if self.count == 1:
            return Sending.done(_send_each(self._backend(0), deliveries))
        lanes = min(self.count, len(deliveries))
        futures = [
            self._thread(lane).submit(_send_each, self._backend(lane), deliveries[lane::lanes])
            for lane in range(lanes)
        ]
        return Sending(len(deliveries), futures)

    def send_all(self, deliveries: list[Delivery]) -> list[Any]:
        """The provider's id, or the exception raised, for each delivery in order."""
        return self.submit(deliveries).results()

    def close(self) -> None:
        for thread in self._threads:
            thread.shutdown(wait=True)
        self._threads = []
        for backend in self._backends:
            backend.close()
        self._backends = []
