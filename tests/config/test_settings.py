"""Operators configure Journeyline through the environment; mistakes get one clear line."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {
        key: value for key, value in os.environ.items() if key not in ("DEBUG", "SECRET_KEY")
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_no_secret_key_with_debug_off_refuses_to_start_with_one_line():
    result = manage("check", DEBUG="false")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "journeyline: configuration error: SECRET_KEY must be set when DEBUG is off "
        "(set DEBUG=true for local development)"
    ]


def test_a_malformed_variable_is_named():
    result = manage("check", DEBUG="maybe")
    assert result.returncode == 1
    assert "DEBUG must be true or false, not 'maybe'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_chunk_size_below_one_is_refused_with_one_line():
    result = manage("check", DEBUG="true", CAMPAIGN_SNAPSHOT_CHUNK="0")
    assert result.returncode == 1
    assert "CAMPAIGN_SNAPSHOT_CHUNK must be at least 1, not 0" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_check_deploy_is_clean_with_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="journeyline.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
