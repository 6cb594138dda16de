from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Messages"

    def ready(self) -> None:
        from customers.demo.steps import demo_steps

        demo_steps.register("campaigns", "campaigns.demo.load")
        demo_steps.register("broadcasts", "campaigns.demo_broadcasts.load")

        from anymail.signals import tracking

        from campaigns import receivers

        tracking.connect(receivers.on_anymail_tracking, dispatch_uid="campaigns.anymail_tracking")

        from campaigns import privacy
        from campaigns.services.confirmations import confirmation_send
        from consent.hooks import confirmation_senders, privacy_erasers, privacy_exporters

        confirmation_senders.register("campaigns", confirmation_send)
        privacy_exporters.register("messages", privacy.messages_export)
        privacy_erasers.register("messages", privacy.messages_erase)
