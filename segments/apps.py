from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from consent.models import ConsentEvent
        from customers import signals
        from customers.demo.steps import demo_steps
        from customers.reactors import reactors
        from segments import receivers

        reactors.register("segments", "segments.reactors.on_events")
        # Before campaigns' and journeys' steps (INSTALLED_APPS order): the win-back reads scores.
        demo_steps.register("segments", "segments.demo.load")
        signals.customer_merged.connect(receivers.on_customer_merged, dispatch_uid="segments.merge")
        signals.customer_profile_changed.connect(
            receivers.on_customer_profile_changed, dispatch_uid="segments.profile"
        )
        # Each consent ledger row (consent_record) re-evaluates the consent segments.
        post_save.connect(
            receivers.on_consent_recorded, sender=ConsentEvent, dispatch_uid="segments.consent"
        )
