"""Templates and their versions in the admin: editing, checks at save, preview, test send."""

import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Max, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.clickjacking import xframe_options_sameorigin

from campaigns.admin.forms import (
    CHANNEL_FIELDS,
    PreviewForm,
    TemplateContentForm,
    TemplateContentFormSet,
    TestSendForm,
)
from campaigns.channels import SendError
from campaigns.channels.push import push_payload_sizes
from campaigns.models import MessageTemplate, TemplateContent, TemplateVersion
from campaigns.rendering import RenderedMessage, TemplateError
from campaigns.rendering.sms import sms_info
from campaigns.services.preview import template_preview, template_test_send
from campaigns.services.templates import (
    template_version_assign_number,
    template_version_copy,
    template_version_ensure_draft,
    template_version_publish,
)
from consent.channels import Channel


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)


class TemplateVersionInline(admin.TabularInline):
    model = TemplateVersion
    fields = ["number", "note", "status", "created_by", "created_at", "published_at"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False
    ordering = ["-number"]

    @admin.display(description="Status")
    def status(self, version: TemplateVersion) -> str:
        return "published" if version.is_published else "draft"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "channel", "latest_version", "updated_at"]
    list_filter = ["channel"]
    search_fields = ["name", "description"]
    fields = ["name", "channel", "description", "default_locale", "sample_context", "new_version"]
    readonly_fields = ["new_version"]
    inlines = [TemplateVersionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[MessageTemplate]:
        return super().get_queryset(request).annotate(highest_version=Max("versions__number"))

    @admin.display(description="Latest version", ordering="highest_version")
    def latest_version(self, template: MessageTemplate) -> str:
        return f"v{template.highest_version}" if template.highest_version else "—"

    @admin.display(description="Versions")
    def new_version(self, template: MessageTemplate) -> str:
        if template.pk is None:
            return "Save the template, then write its first version."
        url = reverse("admin:campaigns_templateversion_add") + f"?template={template.pk}"
        return format_html('<a class="button" href="{}">Write a new version</a>', url)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The channel decides what a version contains: it cannot change afterwards.
        return [*self.readonly_fields, "channel"] if obj is not None else self.readonly_fields


class TemplateContentInline(admin.StackedInline):
    model = TemplateContent
    form = TemplateContentForm
    formset = TemplateContentFormSet
    extra = 0
    min_num = 1

    def _channel(self, request: HttpRequest, obj: TemplateVersion | None) -> str | None:
        if obj is not None and obj.template_id:
            return obj.template.channel
        template_id = request.POST.get("template") or request.GET.get("template")
        if template_id and str(template_id).isdigit():
            template = MessageTemplate.objects.filter(pk=int(template_id)).first()
            if template is not None:
                return template.channel
        return None

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        channel = self._channel(request, obj)
        if channel is None:
            # No template chosen yet: every channel's fields, grouped.
            fieldsets, seen = [(None, {"fields": ["locale"]})], set()
            for name, fields in CHANNEL_FIELDS.items():
                fieldsets.append(
                    (Channel(name).label, {"fields": [f for f in fields if f not in seen]})
                )
                seen.update(fields)
            return fieldsets
        return [(None, {"fields": ["locale", *CHANNEL_FIELDS[Channel(channel)]]})]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.now = _now()
        return formset

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (obj is None or not obj.is_published) and super().has_delete_permission(request, obj)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "template", "number", "status", "created_by", "published_at"]
    list_filter = ["template__channel", ("published_at", admin.EmptyFieldListFilter)]
    list_select_related = ["template"]
    search_fields = ["template__name", "note"]
    inlines = [TemplateContentInline]
    change_form_template = "admin/campaigns/templateversion/change_form.html"
    actions = ["publish_selected"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["template", "note"]
        return [
            "template",
            "number",
            "note",
            "created_by",
            "created_at",
            "published_at",
            "published_by",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["template", "number", "created_by", "created_at", "published_at", "published_by"]

    @admin.display(description="Status", boolean=False)
    def status(self, version: TemplateVersion) -> str:
        return "published" if version.is_published else "draft"

    # A published version is never edited: it is shown read-only.
    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: TemplateVersion, form: Any, change: bool
    ) -> None:
        template_version_ensure_draft(version=obj)
        if not change:
            obj.created_by = request.user.get_username()
            template_version_assign_number(version=obj)
        super().save_model(request, obj, form, change)

    # Actions -----------------------------------------------------------------------
    @admin.action(description="Publish the selected drafts", permissions=["publish"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[TemplateVersion]) -> None:
        published = 0
        for version in queryset.select_related("template"):
            try:
                published += template_version_publish(
                    version=version, published_by=request.user.get_username(), now=_now()
                )
            except ValidationError as error:
                self.message_user(
                    request, f"{version}: {'; '.join(error.messages)}", messages.ERROR
                )
        self.message_user(request, f"Published {published} version(s).", messages.SUCCESS)

    def has_publish_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.publish_templateversion")

    # Custom views ------------------------------------------------------------------
    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        return [
            path(
                "<int:version_id>/preview/",
                wrap(self.preview_view),
                name="campaigns_templateversion_preview",
            ),
            path(
                "<int:version_id>/preview/html/",
                wrap(xframe_options_sameorigin(self.preview_html_view)),
                name="campaigns_templateversion_preview_html",
            ),
            path(
                "<int:version_id>/publish/",
                wrap(self.publish_view),
                name="campaigns_templateversion_publish",
            ),
            path(
                "<int:version_id>/copy/",
                wrap(self.copy_view),
                name="campaigns_templateversion_copy",
            ),
            *super().get_urls(),
        ]

    def _version(self, request: HttpRequest, version_id: int) -> TemplateVersion:
        version = get_object_or_404(
            TemplateVersion.objects.select_related("template").prefetch_related("contents"),
            pk=version_id,
        )
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        return version

    def preview_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = self._version(request, version_id)
        channel = version.template.channel
        can_send = request.user.has_perm("campaigns.send_test_message")
        preview_form = PreviewForm(request.GET or None)
        send_form = TestSendForm(
            request.POST if request.method == "POST" else None,
            channel=channel,
            initial=request.GET.dict(),
        )
        customer, locale = None, ""
        if preview_form.is_bound and preview_form.is_valid():
            customer, locale = (
                preview_form.cleaned_data["customer"],
                preview_form.cleaned_data["locale"],
            )
        if request.method == "POST":
            if not can_send:
                raise PermissionDenied
            if send_form.is_valid():
                self._test_send(request, version, send_form.cleaned_data)
                return HttpResponseRedirect(request.get_full_path())
        rendered, error = None, None
        if not preview_form.is_bound or preview_form.is_valid():
            try:
                rendered = template_preview(
                    version=version, customer=customer, locale=locale, now=_now()
                )
            except TemplateError as template_error:
                error = template_error
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview of {version}",
            "version": version,
            "channel": channel,
            "preview_form": preview_form,
            "send_form": send_form,
            "can_send": can_send,
            "rendered": rendered,
            "error": error,
            "html_url": reverse("admin:campaigns_templateversion_preview_html", args=[version.pk])
            + ("?" + request.GET.urlencode() if request.GET else ""),
            **(self._channel_facts(rendered) if rendered else {}),
        }
        return TemplateResponse(request, "campaigns/admin/preview.html", context)

    def _channel_facts(self, rendered: RenderedMessage) -> dict[str, Any]:
        if rendered.channel == Channel.SMS:
            return {"sms": sms_info(rendered.body)}
        if rendered.channel == Channel.PUSH:
            return {
                "push_sizes": [
                    {"provider": name, "size": size, "limit": limit, "over": size > limit}
                    for name, (size, limit) in push_payload_sizes(rendered).items()
                ]
            }
        return {}

    def _test_send(
        self, request: HttpRequest, version: TemplateVersion, data: dict[str, Any]
    ) -> None:
        try:
            provider_id = template_test_send(
                version=version,
                customer=data["customer"],
                locale=data["locale"],
                address=data["address"],
                platform=data.get("platform", ""),
                sent_by=request.user.get_username(),
                now=_now(),
            )
        except TemplateError as error:
            self.message_user(request, f"Not sent: {error}", messages.ERROR)
        except SendError as error:
            self.message_user(request, f"Not sent: {error.reason}", messages.ERROR)
        else:
            self.log_change(request, version, f"Sent a test message (provider id {provider_id}).")
            self.message_user(
                request, f"Test message sent (provider id {provider_id}).", messages.SUCCESS
            )

    def preview_html_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = self._version(request, version_id)
        form = PreviewForm(request.GET or None)
        customer, locale = None, ""
        if form.is_bound and form.is_valid():
            customer, locale = form.cleaned_data["customer"], form.cleaned_data["locale"]
        try:
            html = template_preview(
                version=version, customer=customer, locale=locale, now=_now()
            ).html
        except TemplateError as error:
            html = format_html("<pre>{}</pre>", str(error))
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        # Shown inside the preview page only, and even opened directly it runs no script.
        response["Content-Security-Policy"] = (
            "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline'; font-src *"
        )
        return response

    def publish_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = self._version(request, version_id)
        if request.method != "POST" or not self.has_publish_permission(request):
            raise PermissionDenied
        try:
            if template_version_publish(
                version=version, published_by=request.user.get_username(), now=_now()
            ):
                self.log_change(request, version, "Published.")
                self.message_user(
                    request, f"{version} is published: sends now use it.", messages.SUCCESS
                )
            else:
                self.message_user(request, f"{version} was already published.", messages.WARNING)
        except ValidationError as error:
            self.message_user(
                request, f"Not published: {'; '.join(error.messages)}", messages.ERROR
            )
        return HttpResponseRedirect(
            reverse("admin:campaigns_templateversion_change", args=[version.pk])
        )

    def copy_view(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = self._version(request, version_id)
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        draft = template_version_copy(version=version, created_by=request.user.get_username())
        self.log_addition(request, draft, f"Copied from v{version.number}.")
        self.message_user(
            request, f"{draft} is a new draft copied from v{version.number}.", messages.SUCCESS
        )
        return HttpResponseRedirect(
            reverse("admin:campaigns_templateversion_change", args=[draft.pk])
        )

    def get_formset_kwargs(self, request: HttpRequest, obj: Any, inline: Any, prefix: str) -> dict:
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        template_id = request.GET.get("template", "")
        if obj.pk is None and request.method == "GET" and template_id.isdigit():
            template = MessageTemplate.objects.filter(pk=int(template_id)).first()
            if template is not None:
                kwargs["initial"] = [{"locale": template.default_locale}]
        return kwargs

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        extra_context = {
            **(extra_context or {}),
            "can_publish": self.has_publish_permission(request),
            "can_copy": self.has_add_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)
