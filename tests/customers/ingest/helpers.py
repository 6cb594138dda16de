import gzip

import orjson


def post(client, path: str, body, auth: str | None, *, gzipped: bool = False, **extra):
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    headers = dict(extra)
    if gzipped:
        raw = gzip.compress(raw)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    if auth:
        headers["HTTP_AUTHORIZATION"] = auth
    content_type = headers.pop("content_type", "application/json")
    return client.post(path, raw, content_type=content_type, **headers)
