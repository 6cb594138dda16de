from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.http import require_GET, require_POST

from customers.models import ApiKey
from customers.services.api_keys import api_key_create, api_key_revoke

# New keys' secrets between the form's POST and the page that shows them: {id: secret}.
NEW_KEYS_SESSION_KEY = "journeyline_new_api_keys"


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ingest for sources sending events; admin can manage keys.",
    )

    class Meta:
        model = ApiKey
        fields = ["name"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created through the service (the secret is shown once, on the page the form
    redirects to) and revoked, never deleted: events keep pointing at their key."""

    list_display = [
        "name",
        "prefix",
        "scopes_display",
        "is_active",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "=prefix"]
    ordering = ["-pk"]
    actions = ["revoke"]
    readonly_fields = [
        "prefix",
        "scopes_display",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    ]
    # The hash is not a secret by itself, but nothing is gained by showing it.
    exclude = ["secret_hash", "scopes"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes"]
        return ["name", *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        api_key, raw_key = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user.get_username(),
        )
        # The admin logs the addition and redirects using ``obj``: make it the new row.
        obj.__dict__.update(api_key.__dict__)
        obj._state.adding = False
        request._journeyline_new_api_key = raw_key

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, "_journeyline_new_api_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        # Post/redirect/get, so that refreshing the answer cannot post the form again and
        # create another key. The secret waits in the server-side session for the one page
        # that shows it, which takes it out; keyed by id, so two tabs do not clash.
        pending = request.session.get(NEW_KEYS_SESSION_KEY, {})
        request.session[NEW_KEYS_SESSION_KEY] = {**pending, str(obj.pk): raw_key}
        return HttpResponseRedirect(reverse("admin:customers_apikey_created", args=[obj.pk]))

    def created_view(self, request, object_id):
        """The new key's secret, once: a second visit (a refresh) finds it gone."""
        api_key = get_object_or_404(ApiKey, pk=object_id)
        if not self.has_add_permission(request):
            raise PermissionDenied
        pending = request.session.get(NEW_KEYS_SESSION_KEY, {})
        raw_key = pending.pop(str(api_key.pk), None)
        if raw_key is None:
            self.message_user(
                request,
                "A key's secret is shown only once, right after it is created, and cannot be "
                "shown again. If it was lost, revoke this key and create a new one.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse("admin:customers_apikey_change", args=[api_key.pk]))
        request.session[NEW_KEYS_SESSION_KEY] = pending
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API key created",
            "api_key": api_key,
            "raw_key": raw_key,
        }
        response = TemplateResponse(request, "admin/customers/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self):
        revoke = self.admin_site.admin_view(require_POST(self.revoke_view))
        created = self.admin_site.admin_view(require_GET(self.created_view))
        return [
            path("<path:object_id>/revoke/", revoke, name="customers_apikey_revoke"),
            path("<path:object_id>/created/", created, name="customers_apikey_created"),
            *super().get_urls(),
        ]

    def revoke_view(self, request, object_id):
        """The "Revoke" button on a key's page (a POST, with the admin's CSRF check)."""
        api_key = get_object_or_404(ApiKey, pk=object_id)
        if not self.has_change_permission(request, api_key):
            raise PermissionDenied
        self._revoke(request, [api_key])
        return HttpResponseRedirect(reverse("admin:customers_apikey_change", args=[api_key.pk]))

    @admin.display(description="active", boolean=True)
    def is_active(self, api_key: ApiKey) -> bool:
        return api_key.is_active

    @admin.display(description="scopes")
    def scopes_display(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.scopes)

    @admin.action(description="Revoke the selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        self._revoke(request, list(queryset.order_by("pk")))

    def _revoke(self, request, api_keys: list[ApiKey]) -> None:
        revoked, already = [], []
        for api_key in api_keys:
            if not api_key.is_active:
                already.append(api_key)
                continue
            api_key_revoke(api_key=api_key)
            revoked.append(api_key)
            self.log_change(request, api_key, "Revoked.")
        if revoked:
            names = ", ".join(str(api_key) for api_key in revoked)
            self.message_user(
                request, f"Revoked {len(revoked)} API key(s): {names}.", messages.SUCCESS
            )
        if already:
            names = ", ".join(str(api_key) for api_key in already)
            self.message_user(
                request,
                f"{len(already)} already revoked, left as they were: {names}.",
                messages.WARNING,
            )
