"""Sending a batch of prepared deliveries over several connections at once.

A send is mostly waiting: four SMTP round trips (MAIL, RCPT, DATA, the message) during
which the provider works and the worker idles. Rendering stays in the task's thread;
the deliveries of a chunk are then dealt round-robin to a few lanes, each a backend
with its own connection in its own thread, so the waits overlap instead of adding up.
Each lane keeps its connection for the whole batch. Lanes never touch the database: they
return the provider's id or the exception for each delivery, in order, and the caller
records the outcomes.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings

from campaigns.channels import Delivery, get_backend
from campaigns.channels.registry import backend_create


class SendLanes:
    """Up to ``count`` backends of ``channel``, opened on first use, closed by ``close``."""

    def __init__(self, channel: str, count: int) -> None:
        self.channel = channel
        self.count = max(1, count)
        self._backends: list[Any] = []
        self._executor: ThreadPoolExecutor | None = None

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

    def send_all(self, deliveries: list[Delivery]) -> list[Any]:
        """The provider's id, or the exception raised, for each delivery in order."""
        if not deliveries:
            return []
        lanes = min(self.count, len(deliveries))
        backends = [self._backend(index) for index in range(lanes)]
        results: list[Any] = [None] * len(deliveries)

        def run(lane: int) -> None:
            backend = backends[lane]
            for index in range(lane, len(deliveries), lanes):
                try:
                    results[index] = backend.send(deliveries[index])
                except Exception as error:  # recorded per message by the caller
                    results[index] = error

        if lanes == 1:
            run(0)
        else:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.count, thread_name_prefix="send-lane")
            list(self._executor.map(run, range(lanes)))
        return results

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        for backend in self._backends:
            backend.close()
        self._backends = []
