"""The journeys admin, one module per model admin."""

from journeys.admin import enrolments, journeys  # noqa: F401
