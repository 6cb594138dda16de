"""The segments admin."""

from segments.admin import models, segments  # noqa: F401
