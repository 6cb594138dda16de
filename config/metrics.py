"""/metrics in the Prometheus text format. Apps add gauges in their AppConfig.ready().

Set METRICS_TOKEN to require ``Authorization: Bearer <token>``; without it the endpoint is
open, for scraping on an internal network.
"""

import hmac
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

Gauge = tuple[str, str, Callable[[], float | dict[tuple[tuple[str, str], ...], float]]]
_gauges: list[Gauge] = []


def register_gauge(name: str, help_text: str, read: Callable) -> None:
    """``read`` returns a number, or a mapping of label pairs to numbers."""
    _gauges[:] = [gauge for gauge in _gauges if gauge[0] != name]
    _gauges.append((name, help_text, read))


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{key}="{value}"' for key, value in pairs)
    return "{" + inner + "}"


def render() -> str:
    lines = []
    for name, help_text, read in _gauges:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        value = read()
        samples = value if isinstance(value, dict) else {(): value}
        for labels, number in samples.items():
            lines.append(f"{name}{_labels(labels)} {float(number):g}")
    return "\n".join(lines) + "\n"


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = getattr(settings, "METRICS_TOKEN", "")
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponse("unauthorised\n", status=401, content_type="text/plain")
    return HttpResponse(render(), content_type="text/plain; version=0.0.4")
