from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Messages"

    def ready(self) -> None:
        from customers.demo.steps import demo_steps

        demo_steps.register("campaigns", "campaigns.demo.load")
