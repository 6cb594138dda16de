"""The ingest endpoints straight on WSGI, without Django's request, middleware or response.

A single ``/v1/track`` costs little work of its own (parse, one group commit), so what
Django builds around it (a request object, ten middlewares, URL resolving, a response)
was a large part of each call. For a POST to an ingest endpoint this path reads the
body and headers from the WSGI environ, runs the very same ``ingest_call`` as the Django
view, and writes the answer with the headers the middleware would have added.

Anything else goes to Django unchanged, and so do the ingest requests this path does not
handle exactly as Django would: other methods (OPTIONS), a body without Content-Length,
one larger than DATA_UPLOAD_MAX_MEMORY_SIZE, a host not in ALLOWED_HOSTS, and plain HTTP
when SECURE_SSL_REDIRECT wants a redirect.
"""

import logging
from collections.abc import Callable, Iterable

import orjson
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.http.request import split_domain_port, validate_host

from customers.ingest.urls import urlpatterns
from customers.ingest.views import _CORS, ingest_call

logger = logging.getLogger(__name__)

PREFIX = "/v1/"
_STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    500: "500 Internal Server Error",
}
_FAILED = orjson.dumps({"success": False, "error": "internal error"})


def _routes() -> dict[str, str | None]:
    """Path after /v1/ -> message type (None for a batch), as customers.ingest.urls says."""
    return {str(pattern.pattern): pattern.callback.message_type for pattern in urlpatterns}


def _security_headers() -> list[tuple[str, str]]:
    """What SecurityMiddleware and XFrameOptionsMiddleware add to every answer."""
    headers = []
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append(("X-Content-Type-Options", "nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append(("Referrer-Policy", policy if isinstance(policy, str) else ",".join(policy)))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY))
    headers.append(("X-Frame-Options", getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()))
    return headers


def _hsts_header() -> tuple[str, str] | None:
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return ("Strict-Transport-Security", value)


class IngestFastPath:
    """WSGI middleware: ingest POSTs answered here, everything else by ``django_app``."""

    def __init__(self, django_app: Callable) -> None:
        self.django_app = django_app
        self.routes = _routes()
        self.headers = [("Content-Type", "application/json"), *_CORS.items()]
        self.headers += _security_headers()
        self.hsts = _hsts_header()
        self.body_limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        self.proxy_ssl_header = settings.SECURE_PROXY_SSL_HEADER
        self.hosts_checked: dict[str, bool] = {}

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ.get("REQUEST_METHOD") != "POST":
            return self.django_app(environ, start_response)
        message_type = self.routes.get(path[len(PREFIX) :], "")
        if message_type == "":
            return self.django_app(environ, start_response)
        length = environ.get("CONTENT_LENGTH") or ""
        secure = self._secure(environ)
        if (
            not length.isdigit()
            or (self.body_limit is not None and int(length) > self.body_limit)
            or (settings.SECURE_SSL_REDIRECT and not secure)
            or not self._host_allowed(environ)
        ):
            return self.django_app(environ, start_response)
        body = environ["wsgi.input"].read(int(length))
        # Django's request signals: what is connected to them (closing a database connection
        # that is broken or too old, resetting the query log) happens here too.
        request_started.send(sender=self.__class__, environ=environ)
        try:
            answer = ingest_call(
                message_type=message_type,
                body=body,
                content_type=environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower(),
                content_encoding=environ.get("HTTP_CONTENT_ENCODING", ""),
                authorization=environ.get("HTTP_AUTHORIZATION", ""),
            )
            status, payload, extra = answer.status, answer.body, list(answer.headers.items())
        except Exception:
            logger.exception("ingest request failed", extra={"path": path})
            status, payload, extra = 500, _FAILED, []
        finally:
            request_finished.send(sender=self.__class__)
        headers = [*self.headers, *extra, ("Content-Length", str(len(payload)))]
        if secure and self.hsts is not None:
            headers.append(self.hsts)
        start_response(_STATUS_LINES.get(status, f"{status} Error"), headers)
        return [payload]

    def _secure(self, environ: dict) -> bool:
        if environ.get("wsgi.url_scheme") == "https":
            return True
        if self.proxy_ssl_header:
            header, value = self.proxy_ssl_header
            return environ.get(header, "").split(",")[0].strip() == value
        return False

    def _host_allowed(self, environ: dict) -> bool:
        """As HttpRequest.get_host decides, remembered per Host header."""
        if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in environ:
            host = environ["HTTP_X_FORWARDED_HOST"]
        else:
            host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        allowed = self.hosts_checked.get(host)
        if allowed is None:
            allowed_hosts = settings.ALLOWED_HOSTS
            if settings.DEBUG and not allowed_hosts:
                allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
            domain, _ = split_domain_port(host)
            allowed = bool(domain) and validate_host(domain, allowed_hosts)
            if len(self.hosts_checked) < 1000:  # bounded: hosts are chosen by clients
                self.hosts_checked[host] = allowed
        return allowed
