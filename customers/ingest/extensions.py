"""Checks that apps above customers add to message validation, in their AppConfig.ready().

A validator takes the message type and the raw message and returns ``(field, reason)``
pairs; any pair makes the message invalid, so the request is refused with a 400 before
anything is written. Validators must be pure: no database, no clock.
"""

from collections.abc import Callable

Validator = Callable[[str, dict], list[tuple[str, str]]]

_validators: dict[str, Validator] = {}


def register_validator(name: str, validator: Validator) -> None:
    _validators[name] = validator


def validators() -> list[Validator]:
    return list(_validators.values())
