"""Group commit: the concurrent requests of one web process share one transaction.

Each request is validated and authenticated on its own thread, then handed to this
process's committer and waits. A single committer thread writes whatever has gathered
(every waiting request, up to a cap) in one transaction with one hand-over task, then
wakes the requests, which answer only now: the answer still comes after the commit.
While one group is being written the next gathers, so under load each commit carries
many requests and an idle server adds no delay.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections

from customers.services.ingest import Submission, events_ingest_many

logger = logging.getLogger(__name__)

MAX_GROUP_MESSAGES = 2_000
WAIT_SECONDS = 60
CONNECTION_CHECK_SECONDS = 1.0


class _Waiting:
    """A request waiting for its commit: ``done`` is a lock held until it is written (the
    cheapest wake-up there is; an Event costs a Condition and two locks per request)."""

    __slots__ = ("done", "error", "submission")

    def __init__(self, submission: Submission) -> None:
        self.submission = submission
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None


class GroupCommitter:
    def __init__(self, write: Callable[..., object] = events_ingest_many) -> None:
        self._write = write
        self._pending: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._starting = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, submission: Submission) -> None:
        """Store the submission; return once it is committed, or raise why it was not."""
        waiting = _Waiting(submission)
        if self._thread is None or not self._thread.is_alive():
            self._start()
        self._pending.put(waiting)
        if not waiting.done.acquire(timeout=WAIT_SECONDS):
            raise TimeoutError("the ingest committer did not answer in time")
        if waiting.error is not None:
            raise waiting.error

    def _start(self) -> None:
        with self._starting:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ingest-group-commit", daemon=True
                )
                self._thread.start()

    def _take_group(self) -> list[_Waiting]:
        waiting = self._pending.get()
        group, size = [waiting], len(waiting.submission.messages)
        while size < MAX_GROUP_MESSAGES:
            try:
                waiting = self._pending.get_nowait()
            except queue.Empty:
                break
            group.append(waiting)
            size += len(waiting.submission.messages)
        return group

    def _run(self) -> None:
        checked = 0.0
        while True:
            group = self._take_group()
            # This thread lives as long as the process: drop a broken or expired database
            # connection now and then, as a request thread would at each request.
            if time.monotonic() - checked > CONNECTION_CHECK_SECONDS:
                close_old_connections()
                checked = time.monotonic()
            try:
                self._write(submissions=[w.submission for w in group])
            except Exception as error:
                if len(group) == 1:
                    group[0].error = error
                else:
                    # Write them one by one, so one request's fault fails that request only.
                    self._one_by_one(group)
            finally:
                for waiting in group:
                    waiting.done.release()

    def _one_by_one(self, group: list[_Waiting]) -> None:
        for waiting in group:
            try:
                close_old_connections()
                self._write(submissions=[waiting.submission])
            except Exception as error:
                logger.exception("ingest write failed")
                waiting.error = error


committer = GroupCommitter()
