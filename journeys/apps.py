from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from customers.reactors import reactors

        reactors.register("journeys", "journeys.reactors.on_events")
