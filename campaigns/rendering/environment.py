"""The two Jinja environments marketers' templates run in, and their filters.

Both are sandboxed and immutable (a template cannot change the data it is given) with
strict undefined handling: a misspelt variable is an error, ``default`` handles optional
ones. The HTML one autoescapes, the text one (subjects, plain text, SMS, push, webhooks)
does not.
"""

import datetime as dt
import functools
import operator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import FileSystemLoader, StrictUndefined, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

LAYOUT_DIRECTORY = Path(__file__).resolve().parent.parent.parent / "templates" / "jinja"

# Generous for email content, small enough that a template cannot eat the worker's memory.
MAX_RANGE = 1_000
MAX_SEQUENCE = 100_000
MAX_EXPONENT = 100
DEFAULT_LOCALE = "en"


def _safe_range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_RANGE:
        raise SecurityError(f"range of {len(result)} items is too long (at most {MAX_RANGE})")
    return result


def _sized(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


class MessageEnvironment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # The context is plain dicts: ``customer.first_name`` is a key. Looking the key up
        # first is faster than Jinja's attribute-then-key order (no exception per lookup)
        # and lets a trait be called "items" or "values". Keys are data, never code; a
        # missing key falls through to the sandbox's checked attribute lookup.
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is too large")
            return operator.pow(left, right)
        # Repeating a string or list: bound the size of the result.
        size, count = _sized(left), right
        if size is None:
            size, count = _sized(right), left
        if size is not None and isinstance(count, int) and size * count > MAX_SEQUENCE:
            raise SecurityError("repeated sequence is too long")
        return operator.mul(left, right)


def _locale_of(context: Context) -> str:
    return context.get("locale") or DEFAULT_LOCALE


@functools.lru_cache(maxsize=256)
def _babel_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LOCALE)


def _zone(context: Context) -> ZoneInfo:
    try:
        return ZoneInfo(context.get("timezone") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@pass_context
def money_filter(context: Context, amount: Any, currency: str, locale: str | None = None) -> str:
    """``{{ 12.5|money("EUR") }}`` → "€12.50" in the customer's locale."""
    return _format_money(str(amount), str(currency), locale or _locale_of(context))


# Prices repeat across the customers of a send; formatting one costs tens of microseconds.
@functools.lru_cache(maxsize=8192)
def _format_money(amount: str, currency: str, locale: str) -> str:
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise ValueError(f"money: {amount!r} is not an amount") from None
    return format_currency(value, currency, locale=_babel_locale(locale))


def _as_datetime(value: Any) -> dt.datetime | dt.date:
    if isinstance(value, dt.datetime | dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date") from None
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    raise ValueError(f"{value!r} is not a date")


def _in_zone(value: dt.datetime | dt.date, zone: ZoneInfo) -> dt.datetime | dt.date:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(zone)
    return value


@pass_context
def date_filter(context: Context, value: Any, format: str = "medium") -> str:
    """``{{ event.properties.delivered_at|date }}`` in the customer's zone and locale."""
    local = _in_zone(_as_datetime(value), _zone(context))
    return format_date(local, format=format, locale=_babel_locale(_locale_of(context)))


@pass_context
def datetime_filter(context: Context, value: Any, format: str = "medium") -> str:
    local = _as_datetime(value)
    if not isinstance(local, dt.datetime):
        local = dt.datetime.combine(local, dt.time(), tzinfo=dt.UTC)
    zone = _zone(context)
    return format_datetime(
        _in_zone(local, zone), format=format, tzinfo=zone, locale=_babel_locale(_locale_of(context))
    )


def pluralize_filter(count: Any, singular: str = "", plural: str = "s") -> str:
    """``item{{ n|pluralize }}`` or ``{{ n|pluralize("person", "people") }}``."""
    try:
        number = Decimal(str(count)) if not isinstance(count, list | tuple | dict) else len(count)
    except InvalidOperation:
        raise ValueError(f"pluralize: {count!r} is not a number") from None
    return singular if number == 1 else plural


def _make(autoescape: bool) -> MessageEnvironment:
    environment = MessageEnvironment(
        loader=FileSystemLoader(LAYOUT_DIRECTORY),
        autoescape=autoescape,
        undefined=StrictUndefined,
        trim_blocks=not autoescape,
        lstrip_blocks=not autoescape,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=64,
    )
    environment.globals["range"] = _safe_range
    # Nothing here needs random filler text, and it is a cheap way to burn CPU.
    environment.globals.pop("lipsum", None)
    environment.filters.update(
        money=money_filter,
        date=date_filter,
        datetime=datetime_filter,
        pluralize=pluralize_filter,
    )
    return environment


html_environment = _make(autoescape=True)
text_environment = _make(autoescape=False)
