import pytest
from django.contrib.auth.models import User


@pytest.fixture
def admin_user(db):
    # No password: tests log in with force_login, and hashing one costs a second per test.
    return User.objects.create_superuser("admin", "admin@example.com", password=None)
