import pytest
from django.contrib.auth import get_user_model


@pytest.fixture
def admin_user(db):
    # No password: hashing one costs half a second per test, and login is forced anyway.
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", None)
    return user


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client
