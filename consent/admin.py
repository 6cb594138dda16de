"""The consent admin: topics, the ledger (read-only), suppressions, the privacy audit trail,
"why would this message be allowed or refused", and the consent state on the customer page.

Writes go through services; nothing here edits a ledger row.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from consent.channels import CONSENT_CHANNEL_CHOICES
from consent.gate import explain
from consent.models import (
    AddressKind,
    ConsentEvent,
    ConsentState,
    PrivacyRequest,
    Suppression,
    Topic,
)
from consent.selectors import customer_by_external_id
from consent.services.gate import consent_decide
from consent.services.ledger import ConsentError
from consent.services.privacy import customer_erase, customer_export
from consent.services.suppression import address_hash, address_normalise, suppression_add
from customers.models import Customer


def _customer_from(value: str) -> Customer | None:
    """A customer by external id, or by ``#<id>`` / a bare number for anonymous ones."""
    value = value.strip()
    customer = customer_by_external_id(external_id=value)
    if customer is None and value.lstrip("#").isdigit():
        customer = Customer.objects.filter(pk=int(value.lstrip("#"))).first()
    return customer


# -- topics ----------------------------------------------------------------------------


class TopicForm(forms.ModelForm):
    channels = forms.TypedMultipleChoiceField(
        choices=CONSENT_CHANNEL_CHOICES, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Topic
        fields = ["key", "name", "description", "channels", "default", "double_opt_in"]


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    form = TopicForm
    list_display = ["name", "key", "channel_list", "default", "double_opt_in", "is_transactional"]
    list_filter = ["default", "double_opt_in"]
    search_fields = ["key", "name"]
    prepopulated_fields = {"key": ["name"]}

    @admin.display(description="channels")
    def channel_list(self, topic: Topic) -> str:
        return ", ".join(topic.channels)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            # A key is in every link and every stored decision: it never changes.
            return ["key", "is_transactional"] if not obj.is_transactional else [
                "key", "name", "description", "channels", "default", "double_opt_in",
            ]  # fmt: skip
        return []

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        # Ledger rows point at topics: a topic with history is kept (PROTECT) as proof.
        if obj is not None and obj.is_transactional:
            return False
        return super().has_delete_permission(request, obj)


# -- the ledger --------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DecisionCheckForm(forms.Form):
    customer = forms.CharField(help_text="External id, or #id for an anonymous profile.")
    channel = forms.ChoiceField(choices=CONSENT_CHANNEL_CHOICES)
    topic = forms.ModelChoiceField(queryset=Topic.objects.all(), to_field_name="key")

    def clean_customer(self):
        customer = _customer_from(self.cleaned_data["customer"])
        if customer is None:
            raise forms.ValidationError("No customer with this id.")
        return customer


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "customer_link", "channel", "topic", "action", "source", "actor"]
    list_filter = [
        "channel",
        "action",
        "source",
        "topic",
        ("occurred_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["customer", "topic"]
    search_fields = ["customer__external_id", "=customer__id", "actor"]
    date_hierarchy = "occurred_at"
    change_list_template = "admin/consent/consentevent_changelist.html"
    fields = [
        "customer_link", "channel", "topic", "action", "source", "evidence", "actor",
        "occurred_at", "recorded_at",
    ]  # fmt: skip
    readonly_fields = fields

    def lookup_allowed(self, lookup, value, request=None):
        # The customer page links here with its customer's ledger.
        return lookup == "customer__id__exact" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="customer", ordering="customer_id")
    def customer_link(self, event: ConsentEvent):
        url = reverse("admin:customers_customer_change", args=[event.customer_id])
        return format_html('<a href="{}">{}</a>', url, event.customer)

    def get_urls(self):
        return [
            path(
                "check/",
                self.admin_site.admin_view(self.check_view),
                name="consent_consentevent_check",
            ),
            *super().get_urls(),
        ]

    def check_view(self, request):
        """Would a message be allowed now, and why: the gate's answer in words."""
        form = DecisionCheckForm(request.GET or None)
        decision = explanation = None
        if form.is_valid():
            decision = consent_decide(
                customer_id=form.cleaned_data["customer"].pk,
                channel=form.cleaned_data["channel"],
                topic_key=form.cleaned_data["topic"].key,
            )
            explanation = explain(decision)
        context = {
            **self.admin_site.each_context(request),
            "title": "Why would a message be allowed or refused?",
            "form": form,
            "decision": decision,
            "explanation": explanation,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/consent/check.html", context)


# -- suppressions ------------------------------------------------------------------------


class SuppressionForm(forms.ModelForm):
    class Meta:
        model = Suppression
        fields = ["kind", "address", "reason", "note"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("reason") == Suppression.Reason.ERASED:
            raise forms.ValidationError("Erased addresses are added by erasure, not by hand.")
        if cleaned.get("kind") and cleaned.get("address"):
            try:
                cleaned["address"] = address_normalise(
                    kind=cleaned["kind"], address=cleaned["address"]
                )
            except ConsentError as error:
                self.add_error("address", error.message)
        return cleaned


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ["shown_address", "kind", "reason", "note", "created_by", "created_at"]
    list_filter = ["kind", "reason"]
    search_fields = ["address"]

    @admin.display(description="address")
    def shown_address(self, suppression: Suppression) -> str:
        return suppression.address or "(erased: kept as a hash)"

    def get_search_results(self, request, queryset, search_term):
        # Erased addresses are only a hash: find them by hashing what was typed.
        results, distinct = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            digests = []
            for kind in AddressKind.values:
                try:
                    normalised = address_normalise(kind=kind, address=term)
                except ConsentError:
                    continue
                digests.append(address_hash(kind=kind, address=normalised))
            results = results | queryset.filter(address_hash__in=digests)
        return results, distinct

    def has_change_permission(self, request, obj=None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.reason == Suppression.Reason.ERASED:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        saved = suppression_add(
            kind=obj.kind,
            address=obj.address,
            reason=obj.reason,
            note=obj.note,
            created_by=request.user.get_username(),
        )
        obj.pk = saved.pk


# -- the customer page -------------------------------------------------------------------


class ConsentStateInline(admin.TabularInline):
    """Shown on the customers app's customer page (attached below)."""

    model = ConsentState
    verbose_name = "consent"
    verbose_name_plural = "consent (current state, from the ledger)"
    fields = ["channel", "topic_shown", "action", "occurred_at", "source_shown", "history"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="topic")
    def topic_shown(self, state: ConsentState) -> str:
        return state.topic.name if state.topic_id else "every topic of the channel"

    @admin.display(description="source")
    def source_shown(self, state: ConsentState):
        url = reverse("admin:consent_consentevent_change", args=[state.event_id])
        return format_html('<a href="{}">{}</a>', url, state.event.get_source_display())

    @admin.display(description="history")
    def history(self, state: ConsentState):
        url = (
            reverse("admin:consent_consentevent_changelist")
            + "?"
            + urlencode({"customer__id__exact": state.customer_id, "channel": state.channel})
        )
        return format_html('<a href="{}">every change on {}</a>', url, state.channel)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("topic", "event")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def _attach_to_customer_admin() -> None:
    customer_admin = admin.site._registry.get(Customer)
    if customer_admin is not None and ConsentStateInline not in customer_admin.inlines:
        customer_admin.inlines = [*customer_admin.inlines, ConsentStateInline]


_attach_to_customer_admin()


# -- privacy audit trail -----------------------------------------------------------------


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "customer_id", "requested_by", "channel"]
    list_filter = ["kind", "channel"]
    search_fields = ["=customer_id", "requested_by"]
    fields = ["created_at", "kind", "customer_id", "requested_by", "channel", "summary"]
    readonly_fields = fields
    change_list_template = "admin/consent/privacyrequest_changelist.html"

    def get_urls(self):
        export_view, erase_view = _privacy_views(self)
        return [
            path(
                "export/",
                self.admin_site.admin_view(export_view),
                name="consent_privacyrequest_export",
            ),
            path(
                "erase/",
                self.admin_site.admin_view(erase_view),
                name="consent_privacyrequest_erase",
            ),
            *super().get_urls(),
        ]


class CustomerChoiceForm(forms.Form):
    customer = forms.CharField(help_text="External id, or #id for an anonymous profile.")

    def clean_customer(self):
        customer = _customer_from(self.cleaned_data["customer"])
        if customer is None:
            raise forms.ValidationError("No customer with this id.")
        return customer


class ErasureForm(CustomerChoiceForm):
    confirm = forms.CharField(label="Type ERASE to confirm", help_text="Erasure cannot be undone.")

    def clean_confirm(self):
        if self.cleaned_data["confirm"].strip() != "ERASE":
            raise forms.ValidationError("Type ERASE (in capitals) to confirm.")
        return "ERASE"


def _require(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _privacy_views(model_admin: PrivacyRequestAdmin):
    def export_view(request):
        _require(request, "consent.export_customer")
        form = CustomerChoiceForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            customer = form.cleaned_data["customer"]
            document = customer_export(
                customer_id=customer.pk,
                requested_by=request.user.get_username(),
                channel="admin",
            )
            response = HttpResponse(
                json.dumps(document, indent=2, ensure_ascii=False, default=str),
                content_type="application/json",
            )
            response["Content-Disposition"] = (
                f'attachment; filename="customer-{customer.pk}-export.json"'
            )
            return response
        return _form_page(request, model_admin, form, "Export a customer's data", "Export")

    def erase_view(request):
        _require(request, "consent.erase_customer")
        form = ErasureForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            customer = form.cleaned_data["customer"]
            erasure = customer_erase(
                customer_id=customer.pk,
                requested_by=request.user.get_username(),
                channel="admin",
            )
            summary = erasure.summary
            messages.success(
                request,
                f"Erased customer #{customer.pk}: {summary['events_deleted']} events and "
                f"{summary['identities_deleted']} identities deleted, "
                f"{summary['addresses_suppressed']} addresses suppressed as hashes, "
                f"{summary['ledger_rows_stripped']} ledger rows stripped.",
            )
            return HttpResponseRedirect(reverse("admin:consent_privacyrequest_changelist"))
        return _form_page(request, model_admin, form, "Erase a customer's data", "Erase")

    return export_view, erase_view


def _form_page(request, model_admin, form, title: str, button: str):
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "button": button,
        "opts": model_admin.model._meta,
    }
    return TemplateResponse(request, "admin/consent/privacy_form.html", context)
