"""The Segment-compatible HTTP Tracking API: /v1/identify, track, page, screen, group, alias, batch.

A batch is all or nothing: if any message is invalid the answer is 400 listing every fault
by index, field and reason, and nothing of the request is stored. Repeated ``messageId``s
are accepted and stored once.
"""

import base64
import binascii
import zlib
from dataclasses import dataclass, field

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from customers.ingest.group_commit import committer
from customers.ingest.messages import FieldError, InvalidMessage, parse_batch, parse_message
from customers.models import ApiKey
from customers.services.api_keys import api_key_authenticate
from customers.services.ingest import Submission, events_ingest_many

MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
_ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}
_SUCCESS = orjson.dumps({"success": True})
_CODES = {400: "invalid_request", 401: "unauthorized"}


class BadRequest(Exception):
    def __init__(self, errors: list[FieldError], status: int = 400):
        super().__init__(errors)
        self.errors = errors
        self.status = status


@dataclass(frozen=True, slots=True)
class Answer:
    """What an ingest call answers, before any web framework turns it into a response."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


_OK = Answer(200, _SUCCESS)


def _answer(answer: Answer) -> HttpResponse:
    response = HttpResponse(answer.body, status=answer.status, content_type="application/json")
    for name, value in {**_CORS, **answer.headers}.items():
        response[name] = value
    return response


def _error(errors: list[FieldError], status: int, **headers: str) -> Answer:
    first = errors[0]
    where = f"message {first.index}: " if first.index is not None else ""
    summary = (
        f"{where}{first.field} {first.reason}".strip() if first.field else where + first.reason
    )
    # "code" and "message" are what Segment's own libraries read from an error answer.
    body = {
        "success": False,
        "code": _CODES.get(status, "invalid_request"),
        "message": summary,
        "error": summary,
        "errors": [e.as_dict() for e in errors],
    }
    return Answer(status, orjson.dumps(body), headers)


def _read_body(raw: bytes, content_type: str, content_encoding: str, limit: int) -> bytes:
    if content_type not in _ACCEPTED_CONTENT_TYPES:
        raise BadRequest([FieldError(None, "Content-Type", "must be application/json")])
    encoding = content_encoding.strip().lower()
    if encoding == "gzip":
        try:
            inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
            raw = inflater.decompress(raw, limit + 1)
        except zlib.error:
            raise BadRequest(
                [FieldError(None, "Content-Encoding", "the body is not valid gzip")]
            ) from None
    elif encoding not in ("", "identity"):
        raise BadRequest([FieldError(None, "Content-Encoding", "must be gzip or none")])
    if len(raw) > limit:
        raise BadRequest([FieldError(None, "body", f"is larger than {limit // 1024} KB")])
    return raw


def _parse_json(raw: bytes) -> object:
    if b"\\u0000" in raw:
        raise BadRequest(
            [FieldError(None, "body", "contains a NUL character (\\u0000), which cannot be stored")]
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise BadRequest([FieldError(None, "body", f"is not valid JSON ({error})")]) from None


def _credentials(authorization: str, payload: object) -> str | None:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    if scheme.lower() == "bearer":
        return value.strip() or None
    # analytics.js beacons may carry the write key in the body instead.
    if isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        return payload["writeKey"]
    return None


def _authenticate(authorization: str, payload: object) -> ApiKey | None:
    raw_key = _credentials(authorization, payload)
    if not raw_key:
        return None
    api_key = api_key_authenticate(raw_key)
    if api_key is None or not api_key.has_scope(ApiKey.Scope.INGEST):
        return None
    return api_key


def _unauthorised() -> Answer:
    return _error(
        [FieldError(None, "Authorization", "unknown or revoked write key")],
        401,
        **{"WWW-Authenticate": 'Basic realm="journeyline"'},
    )


def ingest_call(
    *,
    message_type: str | None,
    body: bytes,
    content_type: str,
    content_encoding: str,
    authorization: str,
) -> Answer:
    """One POST to an ingest endpoint (``message_type`` None for a batch): validate,
    authenticate, store, and only then say what to answer. Shared by the Django view and
    the lean WSGI path (customers.ingest.fast_path), so both behave alike."""
    received_at = timezone.now()
    limit = MAX_BATCH_BYTES if message_type is None else MAX_MESSAGE_BYTES
    try:
        payload = _parse_json(_read_body(body, content_type, content_encoding, limit))
        api_key = _authenticate(authorization, payload)
        if api_key is None:
            return _unauthorised()
        if message_type is None:
            _check_message_sizes(payload)
            messages = parse_batch(payload, received_at=received_at)
        else:
            messages = [
                parse_message(
                    payload, index=None, received_at=received_at, expected_type=message_type
                )
            ]
    except BadRequest as bad:
        return _error(bad.errors, bad.status)
    except InvalidMessage as invalid:
        return _error(invalid.errors, 400)
    submission = Submission(messages=messages, api_key_id=api_key.pk, received_at=received_at)
    if settings.INGEST_GROUP_COMMIT:
        committer.submit(submission)
    else:
        events_ingest_many(submissions=[submission])
    return _OK


def _handle(request: HttpRequest, message_type: str | None) -> HttpResponse:
    if request.method == "OPTIONS":
        return _answer(Answer(204, b""))
    if request.method != "POST":
        return _answer(Answer(405, orjson.dumps({"success": False, "error": "use POST"})))
    return _answer(
        ingest_call(
            message_type=message_type,
            body=request.body,
            content_type=request.content_type or "",
            content_encoding=request.headers.get("Content-Encoding", ""),
            authorization=request.headers.get("Authorization", ""),
        )
    )


def _check_message_sizes(payload: object) -> None:
    if not isinstance(payload, dict) or not isinstance(payload.get("batch"), list):
        return
    errors = [
        FieldError(index, "", f"is larger than {MAX_MESSAGE_BYTES // 1024} KB")
        for index, message in enumerate(payload["batch"])
        if len(orjson.dumps(message)) > MAX_MESSAGE_BYTES
    ]
    if errors:
        raise BadRequest(errors)


def _endpoint(message_type: str | None):
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        return _handle(request, message_type)

    view.__name__ = f"ingest_{message_type or 'batch'}"
    view.message_type = message_type  # read by the lean WSGI path's routing
    return view


identify = _endpoint("identify")
track = _endpoint("track")
page = _endpoint("page")
screen = _endpoint("screen")
group = _endpoint("group")
alias = _endpoint("alias")
batch = _endpoint(None)
