import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from segments.ml.registry import model_train_any
from segments.ml.training import ModelTrainingError
from segments.models import ModelVersion


class Command(BaseCommand):
    help = (
        "Train a new version of a model (propensity on a time-based split, clusters or "
        "recommendations) and activate it."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=ModelVersion.Kind.values)
        parser.add_argument(
            "--as-of", type=_moment, default=None,
            help="Act as if it were this moment (ISO 8601, e.g. 2026-03-10T12:00:00Z); default now.",
        )  # fmt: skip
        parser.add_argument("--horizon-days", type=int, default=30)
        parser.add_argument(
            "--no-activate", action="store_true", help="Keep the current version active."
        )

    def handle(self, *args, kind: str, horizon_days: int, no_activate: bool, as_of, **options):
        if horizon_days < 1:
            raise CommandError("--horizon-days must be at least 1")
        try:
            model = model_train_any(
                kind=kind, now=as_of, horizon_days=horizon_days, activate=not no_activate
            )
        except ModelTrainingError as error:
            raise CommandError(str(error)) from error
        metrics = model.metrics
        suffix = "" if model.is_active else "; not activated"
        if kind == ModelVersion.Kind.CLUSTERS:
            self.stdout.write(
                f"{model}: {metrics['k']} clusters (silhouette {metrics['silhouette']}) "
                f"over {metrics['rows']} customers{suffix}"
            )
            for cluster in metrics["clusters"]:
                self.stdout.write(
                    f"  cluster {cluster['cluster']} ({cluster['size']}): {cluster['description']}"
                )
            return
        if kind == ModelVersion.Kind.RECOMMENDATIONS:
            self.stdout.write(
                f"{model}: {metrics['items']} items, {metrics['customers_with_recommendations']} "
                f"of {metrics['customers']} customers with recommendations{suffix}"
            )
            return
        self.stdout.write(
            f"{model}: ROC AUC {metrics['roc_auc']}, PR AUC {metrics['pr_auc']} "
            f"(base rate {metrics['base_rate']}), Brier {metrics['brier']}, "
            f"{metrics['training_rows']} training and {metrics['holdout_rows']} holdout customers"
            + ("" if model.is_active else "; not activated")
        )
        left_out = model.parameters.get("features_left_out")
        if left_out:
            self.stdout.write(
                f"  left out {len(left_out)} features: the "
                f"{model.parameters['history_days']:.0f} days of history before the training "
                f"rows are shorter than their windows ({', '.join(left_out)})"
            )


def _moment(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--as-of must be an ISO 8601 moment, not {text!r}") from error
    if moment.tzinfo is None:
        raise CommandError("--as-of needs a time zone offset, such as Z or +01:00")
    return moment
