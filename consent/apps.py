from django.apps import AppConfig


class ConsentConfig(AppConfig):
    name = "consent"
    verbose_name = "Consent and privacy"

    def ready(self) -> None:
        from consent import receivers
        from customers.signals import customer_merged

        customer_merged.connect(receivers.on_customer_merged, dispatch_uid="consent.merge")

        from consent import reactors
        from customers.ingest.extensions import register_validator
        from customers.reactors import reactors as event_reactors

        register_validator("consent.identify", reactors.validate_identify)
        event_reactors.register("consent.identify", reactors.on_events)

        from customers.demo.steps import demo_steps

        demo_steps.register("consent", "consent.demo.load")
