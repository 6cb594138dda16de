from django.contrib import admin, messages

from segments.ml.training import model_activate
from segments.models import ModelVersion

BAR_WIDTH, BAR_HEIGHT = 360, 18
CALIBRATION_SIZE = 200
# A cluster's bar, with its description on the line under it.
CLUSTER_ROW_HEIGHT = 44


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    """Model versions are trained by ``manage.py segments_train`` and the weekly schedule;
    here marketers read how good each one is and choose the active one."""

    change_form_template = "admin/segments/modelversion/change_form.html"
    list_display = [
        "__str__",
        "kind",
        "version",
        "is_active",
        "roc_auc",
        "pr_auc",
        "drifted_features",
        "trained_at",
    ]
    list_filter = ["kind", "is_active"]
    ordering = ["kind", "-version"]
    actions = ["activate"]
    fields = [
        "kind",
        "version",
        "is_active",
        "trained_at",
        "training_seconds",
        "parameters",
        "metrics",
        "features",
    ]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="ROC AUC")
    def roc_auc(self, model: ModelVersion):
        return model.metrics.get("roc_auc")

    @admin.display(description="PR AUC")
    def pr_auc(self, model: ModelVersion):
        return model.metrics.get("pr_auc")

    @admin.display(description="drifted features")
    def drifted_features(self, model: ModelVersion) -> str:
        if model.drift_checked_at is None:
            return "not checked yet"
        drifted = sum(1 for result in model.drift.values() if result["drifted"])
        return f"{drifted} of {len(model.drift)}"

    @admin.action(description="Make the selected version the active one of its kind")
    def activate(self, request, queryset):
        chosen = list(queryset.order_by("kind", "-version"))
        kinds = {model.kind for model in chosen}
        if len(kinds) != len(chosen):
            self.message_user(request, "Choose one version per kind.", messages.ERROR)
            return
        for model in chosen:
            model_activate(model=model)
        self.message_user(
            request, f"Active now: {', '.join(str(model) for model in chosen)}.", messages.SUCCESS
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["importance_bars"] = _bars(obj.feature_importances)
            context["importance_height"] = len(obj.feature_importances) * (BAR_HEIGHT + 4)
            context["calibration"] = _calibration(obj.metrics.get("calibration", []))
            context["drifted_count"] = sum(1 for result in obj.drift.values() if result["drifted"])
            if obj.kind == ModelVersion.Kind.CLUSTERS:
                context["cluster_chart"] = _cluster_chart(obj.metrics.get("clusters", []))
        return super().render_change_form(request, context, add, change, form_url, obj)


def _bars(importances: dict[str, float]) -> list[dict]:
    """Horizontal bars, widest for the feature whose shuffling cost the most ROC AUC."""
    top = max((value for value in importances.values() if value > 0), default=0) or 1
    return [
        {
            "name": name,
            "value": value,
            "width": round(max(value, 0) / top * BAR_WIDTH, 1),
            "y": index * (BAR_HEIGHT + 4),
        }
        for index, (name, value) in enumerate(importances.items())
    ]


def _calibration(bins: list[list[float]]) -> dict:
    """Points of predicted against observed rate; perfect calibration is the diagonal."""
    size = CALIBRATION_SIZE
    return {
        "size": size,
        "points": [
            {
                "x": round(predicted * size, 1),
                "y": round(size - observed * size, 1),
                "predicted": predicted,
                "observed": observed,
            }
            for predicted, observed in bins
        ],
    }


def _cluster_chart(clusters: list[dict]) -> dict:
    """Horizontal bars of the customers per cluster, each labelled with its description."""
    top = max((cluster["size"] for cluster in clusters), default=0) or 1
    total = sum(cluster["size"] for cluster in clusters) or 1
    row = CLUSTER_ROW_HEIGHT
    return {
        "height": len(clusters) * row,
        "bars": [
            {
                "cluster": cluster["cluster"],
                "size": cluster["size"],
                "share": round(cluster["size"] / total * 100, 1),
                "description": cluster["description"],
                "width": round(cluster["size"] / top * BAR_WIDTH, 1),
                "y": index * row,
            }
            for index, cluster in enumerate(clusters)
        ],
    }
