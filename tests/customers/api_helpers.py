"""Calling the REST API the way a client does: JSON bodies and a Bearer key."""

import json


def call(client, method: str, path: str, key: str | None = None, body=None, **params):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if method == "get":
        return client.get(path, params, **headers)
    raw = body if isinstance(body, bytes) else json.dumps(body)
    return getattr(client, method)(path, raw, content_type="application/json", **headers)
