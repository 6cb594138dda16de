import orjson
from django import forms

from segments.models import Segment
from segments.services.definitions import SegmentInvalid, segment_validate


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

    class Meta:
        model = Segment
        fields = ["key", "name", "description", "kind", "rules"]

    def clean(self):
        cleaned = super().clean()
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
                        self.add_error(target, f"{path}: {reason}")
                else:
                    self.add_error(target, fault)
        return cleaned

    def static_list(self) -> list[str] | None:
        text = self.cleaned_data.get("static_entries", "")
        if not text.strip():
            return None
        return [entry for line in text.splitlines() for entry in line.split(",") if entry.strip()]
