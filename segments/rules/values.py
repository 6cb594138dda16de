"""The value semantics shared by the SQL compiler and the single-customer evaluator.

Both sides must agree on every input, so the awkward cases are decided here once:
which strings are dates, how JSON values compare, which calendar days an anniversary
window covers.
"""

import datetime as dt
import re
from typing import Any

# An ISO 8601 date or date-time, as Python and PostgreSQL both read it the same way.
# A time without an offset, and a date alone, are taken as UTC.
DATE_PATTERN = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
)
_DATE_RE = re.compile(DATE_PATTERN)

MAX_DAYS = 36_600  # a century: enough for any window, small enough for date arithmetic
MAX_ANNIVERSARY_DAYS = 366


def parse_date(value: Any) -> dt.datetime | None:
    """The instant a JSON value names, or None when it is not an ISO date string."""
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return None
    text = value.replace("Z", "+00:00")
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def json_type(value: Any) -> str:
    """The JSON type name PostgreSQL's ``jsonb_typeof`` gives for a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality as ``jsonb =``: same type and same value (``true`` is not ``1``)."""
    left_type = json_type(left)
    if left_type != json_type(right):
        return False
    if left_type == "array":
        return len(left) == len(right) and all(
            json_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if left_type == "object":
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    return left == right


def anniversary_days(*, now: dt.datetime, days: int) -> list[str]:
    """The ``MM-DD`` days an anniversary may fall on to be within the next ``days`` days.

    The window runs from today (UTC) to today + ``days`` inclusive. In a year without
    29 February, a 29 February anniversary is kept on the 28th.
    """
    today = now.astimezone(dt.UTC).date()
    result: list[str] = []
    for offset in range(days + 1):
        day = today + dt.timedelta(days=offset)
        result.append(day.strftime("%m-%d"))
        if day.month == 2 and day.day == 28 and not _is_leap(day.year):
            result.append("02-29")
    return sorted(set(result))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def path_get(document: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    """Follow a key path into nested objects: (found, value)."""
    current = document
    for key in path:
        if not isinstance(current, dict) or key not in current:
            return False, None
        current = current[key]
    return True, current
