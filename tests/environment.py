"""A pytest plugin loaded first (``-p tests.environment``), before Django reads settings."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_FORMAT", "plain")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Unit tests write each request on its own thread, inside the test's transaction; the
# group committer's own thread and connection are tested on their own and end to end.
os.environ.setdefault("INGEST_GROUP_COMMIT", "false")
