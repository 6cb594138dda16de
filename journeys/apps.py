from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from campaigns.services.cross_channel import JourneyOutbox
        from customers.reactors import reactors
        from journeys.ports import register_outbox

        reactors.register("journeys", "journeys.reactors.on_events")
        # Send and webhook steps become campaigns' outbox rows (journeys may import
        # campaigns; campaigns never imports journeys).
        register_outbox(JourneyOutbox())
        # Condition steps speak the segment rule language (plus trigger-payload conditions).
        from journeys.ports import register_condition_evaluator
        from journeys.segment_conditions import SegmentRuleConditions

        register_condition_evaluator(SegmentRuleConditions())

        from consent.hooks import privacy_erasers, privacy_exporters
        from journeys import privacy

        privacy_exporters.register("journeys", privacy.enrolments_export)
        privacy_erasers.register("journeys", privacy.enrolments_erase)

        from customers.demo.steps import demo_steps

        demo_steps.register("journeys", "journeys.demo.load")
