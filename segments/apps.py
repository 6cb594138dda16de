from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from customers import signals
        from customers.reactors import reactors
        from segments import receivers

        reactors.register("segments", "segments.reactors.on_events")
        signals.customer_merged.connect(receivers.on_customer_merged, dispatch_uid="segments.merge")
        signals.customer_profile_changed.connect(
            receivers.on_customer_profile_changed, dispatch_uid="segments.profile"
        )
