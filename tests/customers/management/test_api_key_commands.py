"""create_api_key and revoke_api_key, run as an operator would."""

import io
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from customers.models import ApiKey
from customers.services.api_keys import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_prints_the_key_alone_on_the_last_line():
    # when
    output = run("create_api_key", "--name", "Website", "--scopes", "ingest, read")
    # then
    last_line = output.rstrip("\n").splitlines()[-1]
    api_key = ApiKey.objects.get()
    assert api_key_authenticate(last_line) == api_key
    assert last_line.startswith(f"jl_{api_key.prefix}_")
    assert api_key.name == "Website"
    assert api_key.scopes == ["ingest", "read"]
    assert "not shown again" in output


@pytest.mark.parametrize(
    ("scopes", "reason"),
    [("ingest,superuser", "unknown scope superuser"), (",", "at least one scope is required")],
)
def test_create_refuses_bad_scopes_with_one_line(scopes, reason):
    # when
    with pytest.raises(CommandError) as refused:
        run("create_api_key", "--name", "Website", "--scopes", scopes)
    # then
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)
    assert ApiKey.objects.count() == 0


def test_create_refuses_an_empty_name():
    with pytest.raises(CommandError, match="a key needs a name"):
        run("create_api_key", "--name", " ", "--scopes", "read")
    assert ApiKey.objects.count() == 0


def test_revoke_by_prefix_stops_the_key():
    # given
    api_key, raw_key = api_key_create(name="Old", scopes=["ingest"])
    other, other_raw = api_key_create(name="Other", scopes=["ingest"])
    # when
    output = run("revoke_api_key", api_key.prefix)
    # then
    assert output == f"Revoked API key 'Old' ({api_key.prefix}).\n"
    assert api_key_authenticate(raw_key) is None
    assert api_key_authenticate(other_raw) == other


def test_revoke_accepts_the_whole_key_and_is_idempotent():
    # given
    api_key, raw_key = api_key_create(name="Old", scopes=["ingest"])
    revoked_at = api_key_revoke(api_key=api_key).revoked_at
    # when
    output = run("revoke_api_key", raw_key)
    # then
    assert "already revoked" in output
    api_key.refresh_from_db()
    assert api_key.revoked_at == revoked_at


def test_revoke_of_an_unknown_prefix_is_an_error():
    # given
    api_key, raw_key = api_key_create(name="Keep", scopes=["ingest"])
    # when
    with pytest.raises(CommandError, match="no API key with prefix 'nothere'"):
        run("revoke_api_key", "nothere")
    # then
    assert api_key_authenticate(raw_key) == api_key


def test_bad_scopes_exit_non_zero_with_one_line_on_stderr():
    # given the command run as a process (it refuses before touching any database)
    command = [sys.executable, "manage.py", "create_api_key", "--name", "x", "--scopes", "bogus"]
    # when
    finished = subprocess.run(
        command,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DEBUG": "true"},
    )
    # then
    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.strip().splitlines() == [
        "CommandError: unknown scope bogus; choose from admin, ingest, read, write"
    ]
