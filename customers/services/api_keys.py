"""API keys: created once and shown once, stored as a hash, looked up by public prefix."""

import hashlib
import hmac
import secrets
import threading
import time

from django.db import transaction
from django.utils import timezone

from customers.models import ApiKey

KEY_PREFIX = "jl"
_CACHE_SECONDS = 5.0
_LAST_USED_EVERY = 60.0


class InvalidScopes(ValueError):
    pass


def _hash(raw_key: str) -> str:
    # Keys are 190 random bits: a fast hash is enough, no password stretching needed.
    return hashlib.sha256(raw_key.encode()).hexdigest()


def validate_scopes(scopes: list[str]) -> list[str]:
    valid = set(ApiKey.Scope.values)
    cleaned = sorted({scope.strip() for scope in scopes if scope.strip()})
    unknown = [scope for scope in cleaned if scope not in valid]
    if unknown:
        raise InvalidScopes(
            f"unknown scope {', '.join(unknown)}; choose from {', '.join(sorted(valid))}"
        )
    if not cleaned:
        raise InvalidScopes(f"at least one scope is required: {', '.join(sorted(valid))}")
    return cleaned


@transaction.atomic
def api_key_create(*, name: str, scopes: list[str], created_by: str = "") -> tuple[ApiKey, str]:
    """Create a key; return it with the secret, which is never shown again."""
    if not name.strip():
        raise ValueError("a key needs a name")
    scopes = validate_scopes(scopes)
    prefix = secrets.token_hex(4)
    raw_key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(24)}"
    api_key = ApiKey.objects.create(
        name=name.strip(),
        prefix=prefix,
        secret_hash=_hash(raw_key),
        scopes=scopes,
        created_by=created_by,
    )
    return api_key, raw_key


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at=None).update(revoked_at=timezone.now())
    api_key.refresh_from_db()
    _cache.clear()
    return api_key


class _KeyCache:
    """A few seconds of memory per process, so ingest does not query the key per request.

    A revoked key stops working in this process at once and in others within seconds.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def get(self, raw_key: str) -> tuple[bool, ApiKey | None]:
        entry = self._entries.get(raw_key)
        if entry and entry[0] > time.monotonic():
            return True, entry[1]
        return False, None

    def put(self, raw_key: str, api_key: ApiKey | None) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[raw_key] = (time.monotonic() + _CACHE_SECONDS, api_key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _KeyCache()
_last_used_written: dict[int, float] = {}


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The active key for this secret, or None. Constant-time comparison of the hash."""
    hit, api_key = _cache.get(raw_key)
    if not hit:
        api_key = _lookup(raw_key)
        _cache.put(raw_key, api_key)
    if api_key is not None:
        _touch(api_key)
    return api_key


def _lookup(raw_key: str) -> ApiKey | None:
    parts = raw_key.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    api_key = ApiKey.objects.filter(prefix=parts[1], revoked_at=None).first()
    if api_key is None or not hmac.compare_digest(api_key.secret_hash, _hash(raw_key)):
        return None
    return api_key


def _touch(api_key: ApiKey) -> None:
    now = time.monotonic()
    if now - _last_used_written.get(api_key.pk, 0.0) < _LAST_USED_EVERY:
        return
    _last_used_written[api_key.pk] = now
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())


def api_key_cache_clear() -> None:
    _cache.clear()
    _last_used_written.clear()
