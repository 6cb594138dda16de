"""The segments admin."""

from segments.admin import segments  # noqa: F401
