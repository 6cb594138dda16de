"""Forms of the template admin: typed fields where marketers type, checks at save."""

import datetime as dt
import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from campaigns.models import TemplateContent
from campaigns.rendering import ContentSource
from campaigns.rendering.sources import normalise_locale
from campaigns.services.templates import template_version_check
from consent.channels import Channel

LAYOUT_CHOICES = [("base", "Base layout (header, footer with unsubscribe links)"), ("", "None")]

CHANNEL_FIELDS = {
    Channel.EMAIL: ("subject", "preheader", "html", "text", "layout"),
    Channel.SMS: ("body",),
    Channel.PUSH: ("title", "body", "image_url", "deep_link", "data"),
    Channel.WEBHOOK: ("url", "method", "headers", "body"),
}


class KeyValueField(forms.CharField):
    """``Name: value`` per line, for push data and webhook headers."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 80, "class": "vLargeTextField"})

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "One “name: value” per line; values may use template tags.")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return "\n".join(f"{key}: {item}" for key, item in value.items())
        if isinstance(value, str) and value.startswith("{"):
            try:
                return self.prepare_value(json.loads(value))
            except ValueError:
                return value
        return value

    def to_python(self, value: Any) -> dict[str, str]:
        if isinstance(value, dict):
            return value
        result: dict[str, str] = {}
        for number, line in enumerate((value or "").splitlines(), start=1):
            if not line.strip():
                continue
            name, separator, item = line.partition(":")
            if not separator or not name.strip():
                raise ValidationError(f"Line {number}: write “name: value”.")
            if name.strip() in result:
                raise ValidationError(f"Line {number}: “{name.strip()}” is given twice.")
            result[name.strip()] = item.strip()
        return result

    def has_changed(self, initial: Any, data: Any) -> bool:
        return (initial or {}) != self.to_python(data)


class TemplateContentForm(forms.ModelForm):
    data = KeyValueField(label="Data")
    headers = KeyValueField(label="Headers")
    layout = forms.ChoiceField(choices=LAYOUT_CHOICES, required=False, initial="base")

    class Meta:
        model = TemplateContent
        fields = [
            "locale",
            "subject",
            "preheader",
            "html",
            "text",
            "layout",
            "title",
            "body",
            "image_url",
            "deep_link",
            "data",
            "url",
            "method",
            "headers",
        ]
        widgets = {
            "html": forms.Textarea(
                attrs={"rows": 18, "cols": 100, "style": "font-family: monospace"}
            ),
            "text": forms.Textarea(
                attrs={"rows": 8, "cols": 100, "style": "font-family: monospace"}
            ),
            "body": forms.Textarea(
                attrs={"rows": 5, "cols": 100, "style": "font-family: monospace"}
            ),
            "subject": forms.TextInput(attrs={"size": 80}),
            "preheader": forms.TextInput(attrs={"size": 80}),
        }
        labels = {"html": "HTML", "text": "Plain text", "image_url": "Image URL", "url": "URL"}
        help_texts = {
            "html": "Variables: customer (fields and traits: customer.first_name), event "
            "(event.properties.…), segments, scores, recommendations, links (unsubscribe, "
            "preferences, view_in_browser), now. Filters: money('EUR'), date, datetime, "
            "pluralize; |default('…') for optional values.",
        }

    def clean_locale(self) -> str:
        locale = self.cleaned_data["locale"].strip()
        if not locale or not all(part.isalnum() for part in locale.replace("_", "-").split("-")):
            raise ValidationError("A locale like “en”, “fr” or “pt-BR”.")
        return locale


class TemplateContentFormSet(forms.BaseInlineFormSet):
    """Renders every locale against the template's sample context before anything is saved."""

    now: dt.datetime | None = None

    def clean(self) -> None:
        super().clean()
        forms_in_use = [
            form
            for form in self.forms
            if getattr(form, "cleaned_data", None) and not form.cleaned_data.get("DELETE")
        ]
        locales = [normalise_locale(form.cleaned_data.get("locale", "")) for form in forms_in_use]
        if len(set(locales)) != len(locales):
            raise ValidationError("Each locale may appear only once.")
        if not forms_in_use:
            raise ValidationError("Write the content in at least one locale.")
        template = getattr(self.instance, "template", None) if self.instance.template_id else None
        if template is None:
            return
        for form in forms_in_use:
            fields = dict(form.cleaned_data)
            content = ContentSource(locale=fields["locale"], fields=fields)
            errors = template_version_check(
                template=template, contents=[content], now=self.now or dt.datetime.now(tz=dt.UTC)
            )
            for error in errors:
                field = error.field.split(".", 1)[0]
                text = (
                    error.message if error.line is None else f"Line {error.line}: {error.message}"
                )
                if "undefined" in error.message or "has no attribute" in error.message:
                    text += (
                        " — use |default(…) if it is optional, or add it to the template's"
                        " sample data."
                    )
                if field in form.fields and field in CHANNEL_FIELDS.get(template.channel, ()):
                    form.add_error(field, text)
                else:
                    form.add_error(None, str(error))


class PreviewForm(forms.Form):
    customer = forms.CharField(
        required=False,
        help_text="Id, user id or email of a customer; empty for the sample customer.",
        widget=forms.TextInput(attrs={"size": 30}),
    )
    locale = forms.CharField(
        required=False,
        max_length=35,
        help_text="Empty for the customer's own locale.",
        widget=forms.TextInput(attrs={"size": 8}),
    )

    def clean_customer(self) -> Any:
        from campaigns.selectors import customer_find

        query = self.cleaned_data["customer"].strip()
        if not query:
            return None
        customer = customer_find(query=query)
        if customer is None:
            raise ValidationError(f"No customer with the id, user id or email “{query}”.")
        return customer


class TestSendForm(PreviewForm):
    address = forms.CharField(
        required=False,
        help_text="Email address, phone number (E.164), device token or Web Push subscription.",
        widget=forms.TextInput(attrs={"size": 50}),
    )
    platform = forms.ChoiceField(
        required=False,
        choices=[("", "—"), ("ios", "iOS"), ("android", "Android"), ("web", "Web push")],
    )

    ADDRESS_LABELS = {
        Channel.EMAIL: ("Email address", "Where the test email goes."),
        Channel.SMS: ("Phone number", "In E.164 form, like +447700900123."),
        Channel.PUSH: ("Device", "A device token, or a Web Push subscription as JSON."),
        Channel.WEBHOOK: ("Address", "Webhooks go to the address in the template."),
    }

    def __init__(self, *args: Any, channel: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel = channel
        # The test sends what is previewed above: the same customer and locale.
        self.fields["customer"].widget = forms.HiddenInput()
        self.fields["locale"].widget = forms.HiddenInput()
        label, help_text = self.ADDRESS_LABELS.get(channel, ("Address", ""))
        self.fields["address"].label, self.fields["address"].help_text = label, help_text

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        address = cleaned.get("address", "").strip()
        if self.channel != Channel.WEBHOOK and not address:
            self.add_error("address", "Where should the test go?")
        if self.channel == Channel.EMAIL and address:
            try:
                forms.EmailField().clean(address)
            except ValidationError:
                self.add_error("address", "Enter a valid email address.")
        if self.channel == Channel.SMS and address and not _is_e164(address):
            self.add_error("address", "Enter a phone number in E.164 form, like +447700900123.")
        if self.channel == Channel.PUSH and address and not cleaned.get("platform"):
            self.add_error("platform", "Choose the device platform.")
        cleaned["address"] = address
        return cleaned


def _is_e164(value: str) -> bool:
    return value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16
