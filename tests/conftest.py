import base64

import pytest

from config.celery import app as celery_app


@pytest.fixture(autouse=True)
def _celery_eager():
    """Unit tests run tasks in-process; end-to-end tests start a real worker instead."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    from customers.services.api_keys import api_key_cache_clear

    api_key_cache_clear()
    yield
    api_key_cache_clear()


def make_key(*scopes: str) -> str:
    from customers.services.api_keys import api_key_create

    _, raw_key = api_key_create(name="test " + ",".join(scopes), scopes=list(scopes))
    return raw_key


@pytest.fixture
def write_key(db) -> str:
    return make_key("ingest")


@pytest.fixture
def basic_auth(write_key) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


@pytest.fixture
def read_key(db) -> str:
    return make_key("read")


@pytest.fixture
def write_api_key(db) -> str:
    return make_key("read", "write")


@pytest.fixture
def admin_key(db) -> str:
    return make_key("admin")
