import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from segments.ml.registry import model_outputs_refresh
from segments.ml.training import ModelTrainingError
from segments.models import PROPENSITY_KINDS, ModelVersion


class Command(BaseCommand):
    help = "Score every customer with the active model of a kind, then update score segments."

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=[*PROPENSITY_KINDS, ModelVersion.Kind.CLUSTERS])
        parser.add_argument(
            "--as-of", type=_moment, default=None,
            help="Act as if it were this moment (ISO 8601, e.g. 2026-03-10T12:00:00Z); default now.",
        )  # fmt: skip

    def handle(self, *args, kind: str, as_of, **options):
        try:
            scored = model_outputs_refresh(kind=kind, now=as_of)
        except ModelTrainingError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"scored {scored} customers with the active {kind} model")


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--as-of must be an ISO 8601 moment, not {text!r}") from error
    if moment.tzinfo is None:
        raise CommandError("--as-of needs a time zone offset, such as Z or +01:00")
    return moment
