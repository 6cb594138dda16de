"""Local stand-ins for providers: an HTTP server and an SMTP server on 127.0.0.1."""

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: Message  # case-insensitive, like HTTP headers
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CannedResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


class FakeProvider:
    """Records every request and answers from queues of canned responses (per path, then
    any path, then ``default``). A ``hang`` response stalls until ``release()``."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._by_path: dict[str, deque[CannedResponse]] = {}
        self._any: deque[CannedResponse] = deque()
        self.default = CannedResponse(200, b"{}", {"Content-Type": "application/json"})
        self._release = threading.Event()
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                provider._record(RecordedRequest(self.command, self.path, self.headers, body))
                canned = provider._next(self.path.split("?", 1)[0])
                if canned.hang:
                    provider._release.wait(10)
                    return
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                self.end_headers()
                self.wfile.write(canned.body)

            do_POST = do_PUT = do_PATCH = do_GET = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def respond(
        self,
        status: int = 200,
        *,
        json_body: Any = None,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        path: str | None = None,
        hang: bool = False,
    ) -> None:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        canned = CannedResponse(status, body, headers, hang)
        with self._lock:
            if path is None:
                self._any.append(canned)
            else:
                self._by_path.setdefault(path, deque()).append(canned)

    def release(self) -> None:
        self._release.set()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _next(self, path: str) -> CannedResponse:
        with self._lock:
            queue = self._by_path.get(path)
            if queue:
                return queue.popleft()
            if self._any:
                return self._any.popleft()
            return self.default

    def start(self) -> "FakeProvider":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


class RecordingSmtpHandler:
    """Accepts mail; refuses recipients listed in ``refuse`` with their SMTP reply."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse: dict[str, str] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpSink:
    def __init__(self) -> None:
        self.handler = RecordingSmtpHandler()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def envelopes(self) -> list[Envelope]:
        return self.handler.envelopes

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
