import orjson
from django import forms

from segments.models import PROPENSITY_KINDS, ModelVersion, Segment
from segments.services.definitions import SegmentInvalid, active_clusters, segment_validate

MODEL_KIND_CHOICES = [
    (kind, ModelVersion.Kind(kind).label)
    for kind in (*PROPENSITY_KINDS, ModelVersion.Kind.CLUSTERS)
]
SCORE_OP_CHOICES = [
    ("above", "Score above the threshold"),
    ("below", "Score below the threshold"),
    ("top_percent", "In the top percent of scores"),
]


def _model_field(path: str) -> str | None:
    """The typed field a fault of a model-based segment's rule belongs to."""
    for suffix, field in (
        (".model", "model_kind"),
        (".op", "model_op"),
        (".value", "model_value"),
        (".in", "model_clusters"),
    ):
        if path.endswith(suffix):
            return field
    return None


class RuleField(forms.JSONField):
    """The rule as JSON: written by the rule builder on the page (the textarea is the
    fallback without JavaScript)."""

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


class SegmentForm(forms.ModelForm):
    rules = RuleField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "segment-rules"}),
        help_text="Built with the rule builder above; see docs/segments.md for the language.",
    )
    static_entries = forms.CharField(
        required=False,
        label="Members (static segments)",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 60}),
        help_text="One external id or email address per line (or separated by commas). "
        "The segment's members become exactly these; leave empty to keep the current list.",
    )

    model_kind = forms.ChoiceField(
        required=False,
        label="Model",
        choices=[("", "---------"), *MODEL_KIND_CHOICES],
        help_text="Model-based segments: the active model whose output selects the members.",
    )
    model_op = forms.ChoiceField(
        required=False,
        label="Score",
        choices=[("", "---------"), *SCORE_OP_CHOICES],
        help_text="For churn and purchase models.",
    )
    model_value = forms.FloatField(
        required=False,
        label="Threshold or percent",
        help_text="A score from 0 to 1 for above / below; a percentage (0 to 100) for top.",
    )
    model_clusters = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        label="Clusters",
        widget=forms.CheckboxSelectMultiple,
        help_text="For the clusters model: members are the customers in any chosen cluster.",
    )

    class Meta:
        model = Segment
        fields = ["key", "name", "description", "kind", "rules"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["model_clusters"].choices = [
            (
                cluster["cluster"],
                f"{cluster['cluster']}: {cluster['description']} ({cluster['size']} customers)",
            )
            for cluster in active_clusters() or []
        ]
        rules = self.instance.rules if self.instance.kind == Segment.Kind.MODEL else None
        if rules and "score" in rules:
            self.initial.update(
                model_kind=rules["score"]["model"],
                model_op=rules["score"]["op"],
                model_value=rules["score"]["value"],
            )
        elif rules and "cluster" in rules:
            self.initial.update(model_kind="clusters", model_clusters=rules["cluster"]["in"])

    def model_rules(self) -> dict | None:
        """The rule the typed model fields choose, or None with form errors."""
        data = self.cleaned_data
        kind = data.get("model_kind")
        if not kind:
            if "model_kind" not in self.errors:
                self.add_error("model_kind", "Choose the model whose output selects the members.")
            return None
        if kind == "clusters":
            if not self.fields["model_clusters"].choices:
                self.add_error("model_clusters", "There is no active clustering: train one first.")
                return None
            if not data.get("model_clusters"):
                self.add_error("model_clusters", "Choose at least one cluster.")
                return None
            return {"cluster": {"in": sorted(data["model_clusters"])}}
        missing = False
        if not data.get("model_op"):
            self.add_error("model_op", "Choose above, below or top percent.")
            missing = True
        if data.get("model_value") is None and "model_value" not in self.errors:
            self.add_error("model_value", "Give a threshold (0 to 1) or a percentage.")
            missing = True
        if missing or "model_value" in self.errors:
            return None
        return {"score": {"model": kind, "op": data["model_op"], "value": data["model_value"]}}

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind", self.instance.kind)
        if kind == Segment.Kind.MODEL:
            cleaned["rules"] = self.model_rules()
        if self.errors:
            return cleaned
        instance = self.instance
        candidate = Segment(
            pk=instance.pk,
            key=cleaned.get("key", instance.key),
            name=cleaned.get("name", instance.name),
            description=cleaned.get("description", instance.description),
            kind=cleaned.get("kind", instance.kind),
            rules=cleaned.get("rules") or {},
        )
        candidate._state.adding = instance._state.adding
        try:
            segment_validate(segment=candidate)
        except SegmentInvalid as error:
            for field, fault in error.errors.items():
                target = field if field in self.fields else None
                if isinstance(fault, dict):
                    for path, reason in fault.items():
                        if candidate.kind == Segment.Kind.MODEL:
                            self.add_error(_model_field(path), reason)
                        else:
                            self.add_error(target, f"{path}: {reason}")
                else:
                    self.add_error(target, fault)
        return cleaned

    def static_list(self) -> list[str] | None:
        text = self.cleaned_data.get("static_entries", "")
        if not text.strip():
            return None
        return [entry for line in text.splitlines() for entry in line.split(",") if entry.strip()]
