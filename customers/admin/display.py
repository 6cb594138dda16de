"""Read-only renderings shared by the customers admins."""

import json

from django.utils.html import format_html


def pretty_json(value: object) -> str:
    """JSON indented in a <pre>, escaped: traits and properties come from outside."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', text)


def compact_json(value: object) -> str:
    if not value:
        return ""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return format_html("<code>{}</code>", text)
