"""Posting the demo's messages through the ingest API, as a Segment source library would.

Batches of 100 to ``/v1/batch``, gzip, the write key as the HTTP Basic user, a few
connections at once. ``sentAt`` is stamped when a batch leaves, so the ingest's clock-skew
correction leaves the timestamps as generated. A batch that fails for a passing reason
(connection, 5xx, 429) is sent again: the ingest stores each ``messageId`` once.
"""

import datetime as dt
import gzip
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import httpx
import orjson

BATCH_SIZE = 100
# The ingest refuses batches over 500 KB: stay well under it whatever the messages are.
MAX_BATCH_BYTES = 400 * 1024
_ATTEMPTS = 5
_RETRY_STATUSES = {429, 500, 502, 503, 504}


class DemoSendError(Exception):
    """Sending failed; the message is one line for the person at the terminal."""


def batches(messages: Iterable[dict], *, size: int = BATCH_SIZE) -> list[list[dict]]:
    """Groups of at most ``size`` messages, and at most MAX_BATCH_BYTES of JSON each."""
    groups: list[list[dict]] = []
    current: list[dict] = []
    current_bytes = 0
    for message in messages:
        message_bytes = len(orjson.dumps(message)) + 1
        if current and (len(current) >= size or current_bytes + message_bytes > MAX_BATCH_BYTES):
            groups.append(current)
            current, current_bytes = [], 0
        current.append(message)
        current_bytes += message_bytes
    if current:
        groups.append(current)
    return groups


def check_reachable(url: str, *, timeout: float = 5.0) -> None:
    """Raise DemoSendError unless ``url``/healthz answers 200."""
    health_url = url.rstrip("/") + "/healthz"
    try:
        response = httpx.get(health_url, timeout=timeout)
    except httpx.HTTPError as error:
        raise DemoSendError(f"cannot reach {health_url}: {_reason(error)}") from None
    if response.status_code != 200:
        raise DemoSendError(
            f"{health_url} answered {response.status_code}: Journeyline is not healthy there"
        )


def send_messages(
    *,
    url: str,
    write_key: str,
    messages: Sequence[dict],
    concurrency: int = 4,
    on_sent: Callable[[int], None] | None = None,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Post every message; return how many were sent. Raises DemoSendError."""
    groups = batches(messages)
    endpoint = url.rstrip("/") + "/v1/batch"
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with (
        httpx.Client(auth=(write_key, ""), timeout=timeout, limits=limits) as client,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="demo-send") as pool,
    ):
        futures = {
            pool.submit(_post, client, endpoint, group, sleep): len(group) for group in groups
        }
        pending = set(futures)
        sent = 0
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                error = future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                sent += futures[future]
                if on_sent is not None:
                    on_sent(futures[future])
    return sent


def _post(
    client: httpx.Client, endpoint: str, group: list[dict], sleep: Callable[[float], None]
) -> None:
    for attempt in range(1, _ATTEMPTS + 1):
        sent_at = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
        body = gzip.compress(orjson.dumps({"batch": group, "sentAt": sent_at}), compresslevel=5)
        try:
            response = client.post(
                endpoint,
                content=body,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        except httpx.HTTPError as error:
            if attempt == _ATTEMPTS:
                raise DemoSendError(f"cannot reach {endpoint}: {_reason(error)}") from None
        else:
            if response.status_code == 200:
                return
            if response.status_code == 401:
                raise DemoSendError(f"{endpoint} refused the write key (401)")
            if response.status_code not in _RETRY_STATUSES or attempt == _ATTEMPTS:
                raise DemoSendError(
                    f"{endpoint} answered {response.status_code}: {_error_of(response)}"
                )
        sleep(min(8.0, 0.5 * 2 ** (attempt - 1)))


def _error_of(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error") or response.text[:200])
    except ValueError:
        return response.text[:200].replace("\n", " ")


def _reason(error: httpx.HTTPError) -> str:
    reason = str(error) or type(error).__name__
    return reason.splitlines()[0]
