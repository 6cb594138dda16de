from django.apps import AppConfig
from django.conf import settings


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from customers import metrics
        from customers.reactors import reactors

        metrics.register()

        # Operators (and the test suite) can plug reactors in by dotted path.
        for dotted_path in getattr(settings, "JOURNEYLINE_EXTRA_REACTORS", []):
            reactors.register(dotted_path, dotted_path)
