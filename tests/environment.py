"""A pytest plugin loaded first (``-p tests.environment``), before Django reads settings."""

import os

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("LOG_FORMAT", "plain")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
