"""Typed forms for each kind of step, so marketers build journeys without writing JSON.

Each form reads a step's config into fields and writes the fields back into a config; the
graph's own validation then checks it, and its problems come back beside the fields.
"""

import datetime as dt

import orjson
from django import forms

from journeys.engine.graph import FIXED_EXITS, KINDS, WEEKDAYS

DURATION_FIELDS = ("days", "hours", "minutes")


def _template_choices(channel: str | None = None):
    from campaigns.models import MessageTemplate

    templates = MessageTemplate.objects.order_by("name")
    if channel:
        templates = templates.filter(channel=channel)
    return [("", "—")] + [(t.pk, f"{t.name} ({t.channel})") for t in templates]


def _topic_choices():
    from consent.models import Topic

    return [("", "—")] + [(t.key, f"{t.name} ({t.key})") for t in Topic.objects.order_by("key")]


def _segment_choices():
    from segments.models import Segment

    return [("", "—")] + [(s.key, f"{s.name} ({s.key})") for s in Segment.objects.order_by("key")]


def _duration_initial(value: dict | None, prefix: str) -> dict:
    return {f"{prefix}{unit}": (value or {}).get(unit, 0) for unit in DURATION_FIELDS}


def _duration_of(data: dict, prefix: str) -> dict:
    return {
        unit: data.get(f"{prefix}{unit}") or 0
        for unit in DURATION_FIELDS
        if data.get(f"{prefix}{unit}")
    }


class StepForm(forms.Form):
    """The fields every step has; a subclass per kind adds its settings."""

    kind = ""
    id = forms.SlugField(
        max_length=100, help_text="Unique in the journey; letters, digits, - and _."
    )
    label = forms.CharField(max_length=200, required=False)
    # Maps a config path (as the graph's validation names it) to the form field at fault.
    field_of = {}

    def __init__(self, *args, step_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        targets = [("", "— choose the next step —")] + [(s, s) for s in step_ids]
        for name in self.exit_names():
            self.fields[f"exit_{name}"] = forms.ChoiceField(
                choices=targets, required=False, label=f"then, on “{name}”"
            )

    def exit_names(self) -> tuple[str, ...]:
        return FIXED_EXITS.get(self.kind, ())

    @classmethod
    def initial_for(cls, step: dict) -> dict:
        initial = {"id": step["id"], "label": step.get("label", "")}
        initial.update({f"exit_{name}": target for name, target in step.get("exits", {}).items()})
        initial.update(cls.config_initial(step.get("config", {})))
        return initial

    @classmethod
    def config_initial(cls, config: dict) -> dict:
        return {}

    def to_config(self) -> dict:
        return {}

    def to_step(self) -> dict:
        data = self.cleaned_data
        step = {
            "id": data["id"],
            "kind": self.kind,
            "config": self.to_config(),
            "exits": {
                name: data[f"exit_{name}"] for name in self.exit_names() if data.get(f"exit_{name}")
            },
        }
        if data.get("label"):
            step["label"] = data["label"]
        return step

    def add_problem(self, field_path: str, message: str) -> None:
        for prefix, field in self.field_of.items():
            if (
                field_path == prefix
                or field_path.startswith(prefix + ".")
                or field_path.startswith(prefix + "[")
            ):
                self.add_error(field, message)
                return
        self.add_error(None, f"{field_path}: {message}")


class TriggerForm(StepForm):
    kind = "trigger"
    type = forms.ChoiceField(
        choices=[
            ("event", "An event"),
            ("segment", "Entering or leaving a segment"),
            ("date_trait", "A date in the profile"),
            ("api", "An API call"),
        ]
    )
    event = forms.CharField(required=False, help_text="For an event trigger: its name.")
    filters = forms.JSONField(
        required=False,
        initial=list,
        help_text='Event property filters, e.g. [{"property": "price", "op": "gt", "value": 0}]',
    )
    segment = forms.ChoiceField(required=False, choices=())
    on = forms.ChoiceField(required=False, choices=[("entered", "entered"), ("left", "left")])
    trait = forms.CharField(
        required=False, help_text="For a date trigger: the trait holding the date."
    )
    offset_days = forms.IntegerField(required=False, initial=0, help_text="Negative: days before.")
    annual = forms.BooleanField(required=False, help_text="Every year (birthdays).")
    field_of = {
        "config.type": "type",
        "config.event": "event",
        "config.filters": "filters",
        "config.segment": "segment",
        "config.on": "on",
        "config.trait": "trait",
        "config.offset_days": "offset_days",
        "config.annual": "annual",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = _segment_choices()

    @classmethod
    def config_initial(cls, config):
        return {
            key: config.get(key)
            for key in (
                "type",
                "event",
                "filters",
                "segment",
                "on",
                "trait",
                "offset_days",
                "annual",
            )
            if key in config
        }

    def to_config(self):
        data = self.cleaned_data
        kind = data["type"]
        if kind == "event":
            config = {"type": "event", "event": data.get("event", "")}
            if data.get("filters"):
                config["filters"] = data["filters"]
            return config
        if kind == "segment":
            return {
                "type": "segment",
                "segment": data.get("segment", ""),
                "on": data.get("on") or "entered",
            }
        if kind == "date_trait":
            config = {
                "type": "date_trait",
                "trait": data.get("trait", ""),
                "offset_days": data.get("offset_days") or 0,
            }
            if data.get("annual"):
                config["annual"] = True
            return config
        return {"type": "api"}


class WaitForm(StepForm):
    kind = "wait"
    mode = forms.ChoiceField(
        choices=[("duration", "For a while"), ("until", "Until a weekday and time")]
    )
    days = forms.IntegerField(required=False, min_value=0, initial=0)
    hours = forms.IntegerField(required=False, min_value=0, initial=0)
    minutes = forms.IntegerField(required=False, min_value=0, initial=0)
    weekdays = forms.MultipleChoiceField(
        required=False, choices=[(d, d) for d in WEEKDAYS], widget=forms.CheckboxSelectMultiple
    )
    time = forms.TimeField(required=False, help_text="In the customer's time zone, HH:MM.")
    field_of = {
        "config.duration": "days",
        "config.until.weekdays": "weekdays",
        "config.until.time": "time",
        "config": "mode",
    }

    @classmethod
    def config_initial(cls, config):
        if "until" in config:
            until = config["until"]
            return {
                "mode": "until",
                "weekdays": until.get("weekdays", []),
                "time": until.get("time"),
            }
        return {"mode": "duration", **_duration_initial(config.get("duration"), "")}

    def to_config(self):
        data = self.cleaned_data
        if data["mode"] == "until":
            time = data.get("time")
            return {
                "until": {
                    "weekdays": data.get("weekdays") or [],
                    "time": time.strftime("%H:%M") if isinstance(time, dt.time) else "",
                }
            }
        return {"duration": _duration_of(data, "")}


class WaitForEventForm(StepForm):
    kind = "wait_for_event"
    event = forms.CharField(help_text="The event that ends the wait early.")
    timeout_days = forms.IntegerField(required=False, min_value=0, initial=0)
    timeout_hours = forms.IntegerField(required=False, min_value=0, initial=0)
    timeout_minutes = forms.IntegerField(required=False, min_value=0, initial=0)
    correlation_property = forms.CharField(
        required=False, help_text="e.g. order_id: the event must carry the trigger's value."
    )
    trigger_property = forms.CharField(
        required=False, help_text="The trigger's property, when named differently."
    )
    field_of = {
        "config.event": "event",
        "config.timeout": "timeout_days",
        "config.correlation": "correlation_property",
    }

    @classmethod
    def config_initial(cls, config):
        correlation = config.get("correlation") or {}
        return {
            "event": config.get("event"),
            **_duration_initial(config.get("timeout"), "timeout_"),
            "correlation_property": correlation.get("property", ""),
            "trigger_property": correlation.get("trigger_property", ""),
        }

    def to_config(self):
        data = self.cleaned_data
        config = {"event": data["event"], "timeout": _duration_of(data, "timeout_")}
        if data.get("correlation_property"):
            config["correlation"] = {"property": data["correlation_property"]}
            if data.get("trigger_property"):
                config["correlation"]["trigger_property"] = data["trigger_property"]
        return config


class RuleField(forms.JSONField):
    """The rule as indented JSON: written by the segments rule builder on the page (the
    textarea is the fallback without JavaScript, and the place for payload conditions)."""

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


class ConditionForm(StepForm):
    kind = "condition"
    rule = RuleField(
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80, "class": "segment-rules"}),
        help_text="Built with the rule builder above (the segment rule language: traits, "
        "events, segments, reachability, scores, clusters…). Conditions on the trigger's "
        'payload go in the JSON, e.g. {"payload": {"key": "cart_total", "op": '
        '"greater_than", "value": 100}}; see docs/journeys.md.',
    )
    field_of = {"config.rule": "rule"}

    @classmethod
    def config_initial(cls, config):
        return {"rule": config.get("rule")}

    def add_problem(self, field_path: str, message: str) -> None:
        # Name the place inside the rule as the rule builder does: $.all[1].score.value.
        if field_path.startswith("config.rule"):
            self.add_error("rule", f"${field_path.removeprefix('config.rule')}: {message}")
        else:
            super().add_problem(field_path, message)

    def to_config(self):
        return {"rule": self.cleaned_data["rule"]}


class SplitForm(StepForm):
    kind = "split"
    branches = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One branch a line: name weight, and 'holdout' for a control branch, e.g. "
        "“a 45”, “b 45”, “control 10 holdout”.",
    )
    field_of = {"config.branches": "branches"}

    def exit_names(self):
        raw = self.data.get("branches") if self.is_bound else self.initial.get("branches", "")
        return tuple(line.split()[0] for line in (raw or "").splitlines() if line.split())

    @classmethod
    def config_initial(cls, config):
        lines = [
            f"{b['name']} {b['weight']}" + (" holdout" if b.get("holdout") else "")
            for b in config.get("branches", [])
        ]
        return {"branches": "\n".join(lines)}

    def clean_branches(self):
        branches = []
        for number, line in enumerate(self.cleaned_data["branches"].splitlines(), start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "holdout"):
                raise forms.ValidationError(
                    f"line {number}: write “name weight” or “name weight holdout”"
                )
            try:
                weight = float(parts[1])
            except ValueError:
                raise forms.ValidationError(f"line {number}: the weight must be a number") from None
            branch = {"name": parts[0], "weight": int(weight) if weight.is_integer() else weight}
            if len(parts) == 3:
                branch["holdout"] = True
            branches.append(branch)
        return branches

    def to_config(self):
        return {"branches": self.cleaned_data["branches"]}


class SendForm(StepForm):
    kind = "send"
    template = forms.TypedChoiceField(coerce=int, choices=())
    topic = forms.ChoiceField(choices=(), help_text="The consent topic this message belongs to.")
    field_of = {
        "config.template": "template",
        "config.channel": "template",
        "config.topic": "topic",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = _template_choices()
        self.fields["topic"].choices = _topic_choices()

    @classmethod
    def config_initial(cls, config):
        return {"template": config.get("template"), "topic": config.get("topic")}

    def to_config(self):
        from campaigns.models import MessageTemplate

        template = self.cleaned_data["template"]
        channel = (
            MessageTemplate.objects.filter(pk=template).values_list("channel", flat=True).first()
        )
        return {"channel": channel or "", "template": template, "topic": self.cleaned_data["topic"]}


class SendBestChannelForm(StepForm):
    kind = "send_best_channel"
    first = forms.TypedChoiceField(coerce=int, choices=(), label="best channel: template")
    second = forms.TypedChoiceField(
        coerce=int, choices=(), required=False, empty_value=None, label="else: template"
    )
    third = forms.TypedChoiceField(
        coerce=int, choices=(), required=False, empty_value=None, label="else: template"
    )
    topic = forms.ChoiceField(choices=())
    field_of = {
        "config.channels[0]": "first",
        "config.channels[1]": "second",
        "config.channels[2]": "third",
        "config.channels": "first",
        "config.topic": "topic",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("first", "second", "third"):
            self.fields[name].choices = _template_choices()
        self.fields["topic"].choices = _topic_choices()

    @classmethod
    def config_initial(cls, config):
        initial = {"topic": config.get("topic")}
        for name, option in zip(
            ("first", "second", "third"), config.get("channels", []), strict=False
        ):
            initial[name] = option.get("template")
        return initial

    def to_config(self):
        from campaigns.models import MessageTemplate

        chosen = [
            self.cleaned_data[n] for n in ("first", "second", "third") if self.cleaned_data.get(n)
        ]
        channels = dict(MessageTemplate.objects.filter(pk__in=chosen).values_list("pk", "channel"))
        return {
            "channels": [{"channel": channels.get(t, ""), "template": t} for t in chosen],
            "topic": self.cleaned_data["topic"],
        }


class UpdateProfileForm(StepForm):
    kind = "update_profile"
    set = forms.JSONField(
        required=False, initial=dict, help_text='Traits to set, e.g. {"stage": "customer"}'
    )
    unset = forms.CharField(required=False, help_text="Traits to remove, separated by commas.")
    field_of = {"config.set": "set", "config.unset": "unset", "config": "set"}

    @classmethod
    def config_initial(cls, config):
        return {"set": config.get("set", {}), "unset": ", ".join(config.get("unset", []))}

    def to_config(self):
        unset = [
            name.strip()
            for name in (self.cleaned_data.get("unset") or "").split(",")
            if name.strip()
        ]
        config = {}
        if self.cleaned_data.get("set"):
            config["set"] = self.cleaned_data["set"]
        if unset:
            config["unset"] = unset
        return config


class WebhookForm(StepForm):
    kind = "webhook"
    template = forms.TypedChoiceField(
        coerce=int, choices=(), help_text="A webhook template (its URL and payload)."
    )
    body = forms.JSONField(
        required=False, initial=dict, help_text="Extra context for the template."
    )
    field_of = {"config.template": "template", "config.body": "body"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = _template_choices("webhook")

    @classmethod
    def config_initial(cls, config):
        return {"template": config.get("template"), "body": config.get("body", {})}

    def to_config(self):
        config = {"template": self.cleaned_data["template"]}
        if self.cleaned_data.get("body"):
            config["body"] = self.cleaned_data["body"]
        return config


class ExitForm(StepForm):
    kind = "exit"
    reason = forms.CharField(
        required=False, help_text="Recorded on the enrolment (default: completed)."
    )
    field_of = {"config.reason": "reason"}

    @classmethod
    def config_initial(cls, config):
        return {"reason": config.get("reason", "")}

    def to_config(self):
        return {"reason": self.cleaned_data["reason"]} if self.cleaned_data.get("reason") else {}


FORMS = {
    form.kind: form
    for form in (
        TriggerForm,
        WaitForm,
        WaitForEventForm,
        ConditionForm,
        SplitForm,
        SendForm,
        SendBestChannelForm,
        UpdateProfileForm,
        WebhookForm,
        ExitForm,
    )
}
assert set(FORMS) == set(KINDS)
