"""The customers admin, one module per model admin."""

from customers.admin import api_keys, customers, events  # noqa: F401
