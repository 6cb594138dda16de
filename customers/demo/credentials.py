"""The demo's admin user and write key, kept in a file so every rerun prints the same ones.

The file (``var/demo-credentials.json`` by default, readable by its owner only) holds the
admin password and the raw write key: this is a demo on one's own machine. Production
installs create users with ``createsuperuser`` and keys with ``create_api_key``.
"""

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction

from customers.models import ApiKey
from customers.services.api_keys import api_key_authenticate, api_key_create

ADMIN_USERNAME = "admin"
WRITE_KEY_NAME = "Demo store write key"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    username: str
    password: str | None  # None: the user exists with a password the demo did not set
    write_key: str
    api_key_id: int
    user_created: bool
    key_created: bool


def _read(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    return stored if isinstance(stored, dict) else {}


def _write(path: Path, stored: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(stored, handle, indent=2)
    temporary.replace(path)


@transaction.atomic
def demo_credentials_ensure(*, path: Path) -> DemoCredentials:
    """The admin superuser and an ingest write key, created on the first run only."""
    stored = _read(path)
    password = stored.get("admin_password") or secrets.token_urlsafe(12)

    user_model = get_user_model()
    user = user_model.objects.filter(username=ADMIN_USERNAME).first()
    user_created = user is None
    if user_created:
        user_model.objects.create_superuser(
            username=ADMIN_USERNAME, email="admin@example.com", password=password
        )
    elif not user.check_password(password):
        password = None  # someone changed it, or made the user: not ours to reset

    write_key = stored.get("write_key")
    key = api_key_authenticate(write_key) if isinstance(write_key, str) else None
    key_created = key is None or not key.has_scope(ApiKey.Scope.INGEST)
    if key_created:
        key, write_key = api_key_create(
            name=WRITE_KEY_NAME, scopes=[ApiKey.Scope.INGEST], created_by="demo_load"
        )

    if password is not None:
        stored["admin_password"] = password
    stored["write_key"] = write_key
    _write(path, stored)
    return DemoCredentials(
        username=ADMIN_USERNAME,
        password=password,
        write_key=write_key,
        api_key_id=key.pk,
        user_created=user_created,
        key_created=key_created,
    )
