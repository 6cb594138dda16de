"""Concurrent requests of one process share a transaction, and still answer only once stored."""

import threading

import pytest
from django.db import connection
from django.test import Client, override_settings

from customers.ingest.group_commit import GroupCommitter
from customers.models import Customer, Event
from tests.customers.ingest.helpers import post


@pytest.mark.django_db(transaction=True)
@override_settings(INGEST_GROUP_COMMIT=True)
def test_concurrent_requests_are_all_stored_before_they_are_answered(basic_auth):
    barrier = threading.Barrier(8)
    answers = []

    def send(index: int) -> None:
        try:
            barrier.wait()
            response = post(
                Client(), "/v1/track",
                {"userId": f"u{index % 3}", "event": "Product Viewed", "messageId": f"m{index}"},
                basic_auth,
            )  # fmt: skip
            # Answered: so it must already be visible to anyone.
            stored = Event.objects.filter(message_id=f"m{index}").exists()
            answers.append((response.status_code, stored))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [(200, True)] * 8
    assert Event.objects.count() == 8
    assert Customer.objects.count() == 3


def submission(name: str):
    from customers.services.ingest import Submission

    return Submission(messages=[name], api_key_id=None, received_at=None)


def test_one_failing_request_in_a_group_fails_alone():
    written = []
    gate = threading.Event()

    def write(*, submissions):
        gate.wait(5)  # hold the first group so that the others gather behind it
        names = [s.messages[0] for s in submissions]
        if "poison" in names:
            raise ValueError("cannot store poison")
        written.append(names)

    committer = GroupCommitter(write=write)
    results = {}

    def send(name: str) -> None:
        try:
            committer.submit(submission(name))
            results[name] = "stored"
        except ValueError as error:
            results[name] = str(error)

    first = threading.Thread(target=send, args=("first",))
    first.start()
    others = [threading.Thread(target=send, args=(name,)) for name in ("a", "poison", "b")]
    for thread in others:
        thread.start()
    gate.set()
    for thread in [first, *others]:
        thread.join()

    assert results == {
        "first": "stored",
        "a": "stored",
        "b": "stored",
        "poison": "cannot store poison",
    }
    assert sorted(name for group in written for name in group) == ["a", "b", "first"]
