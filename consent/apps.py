from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and privacy"

    def ready(self) -> None:
        from consent import receivers
        from customers.signals import customer_merged

        customer_merged.connect(receivers.on_customer_merged, dispatch_uid="consent.merge")
