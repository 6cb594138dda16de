import datetime as dt

import orjson
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from consent.models import Topic
from segments.admin.forms import SegmentForm
from segments.models import Segment
from segments.rules import RuleError
from segments.rules.rfm import RFM_SCORES, RFM_SEGMENT_NAMES
from segments.rules.validation import (
    CHANNELS,
    CONSENT_STATES,
    DATE_FIELDS,
    DATE_OPERATORS,
    SCORE_MODELS,
    SCORE_OPERATORS,
    TEXT_FIELDS,
    TEXT_OPERATORS,
    VALUE_OPERATORS,
)
from segments.selectors import rule_preview, segment_member_count, segment_size_history
from segments.services.definitions import (
    SegmentInvalid,
    segment_create,
    segment_delete,
    segment_update,
)
from segments.services.memberships import (
    RULE_KINDS,
    segment_recompute,
    segment_static_replace,
)

HISTORY_DAYS = 30
CHART_WIDTH, CHART_HEIGHT = 600, 140


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    """Segments are written through the services: rules are checked with the path of each
    fault, and a rule change bumps the version and recomputes the members."""

    form = SegmentForm
    change_form_template = "admin/segments/segment/change_form.html"
    list_display = [
        "name",
        "key",
        "kind",
        "member_count",
        "is_time_dependent",
        "version",
        "last_computed_at",
    ]
    list_filter = ["kind", "is_time_dependent"]
    search_fields = ["name", "=key"]
    actions = ["recompute"]
    readonly_fields = [
        "version",
        "is_time_dependent",
        "member_count",
        "last_computed_at",
        "created_at",
        "updated_at",
    ]

    def get_fieldsets(self, request, obj=None):
        fields = ["key", "name", "description", "kind"]
        if obj is None or obj.kind == Segment.Kind.DYNAMIC:
            fields.append("rules")
        if obj is None or obj.kind == Segment.Kind.STATIC:
            fields.append("static_entries")
        if obj is None or obj.kind == Segment.Kind.MODEL:
            fields.extend(["model_kind", "model_op", "model_value", "model_clusters"])
        fieldsets = [(None, {"fields": fields})]
        if obj is not None:
            fieldsets.append(("Status", {"fields": self.readonly_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Rules, events and journeys refer to the key; the kind decides what the rest means.
        return ["key", "kind", *self.readonly_fields]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletion goes through the service, one by one
        return actions

    # -- writing through the services ----------------------------------------------------------

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            segment = segment_update(
                segment=obj,
                name=data["name"],
                description=data.get("description", ""),
                **({"rules": data.get("rules") or {}} if obj.kind in RULE_KINDS else {}),
            )
        else:
            segment = segment_create(
                key=data["key"],
                name=data["name"],
                description=data.get("description", ""),
                kind=data["kind"],
                rules=data.get("rules") or {},
            )
        # The admin logs and redirects using ``obj``: make it the saved row.
        obj.__dict__.update(segment.__dict__)
        obj._state.adding = False
        entries = form.static_list()
        if segment.kind == Segment.Kind.STATIC and entries is not None:
            result = segment_static_replace(segment=segment, entries=entries)
            self.message_user(
                request,
                f"{result.matched} customers matched the list: {result.changes.entered} entered, "
                f"{result.changes.exited} left."
                + (
                    f" {len(result.unknown)} entries matched no customer." if result.unknown else ""
                ),
                messages.WARNING if result.unknown else messages.SUCCESS,
            )

    def save_related(self, request, form, formsets, change):
        """Nothing related to save: the segment was written by the service."""

    def delete_model(self, request, obj):
        segment_delete(segment=obj)

    def delete_view(self, request, object_id, extra_context=None):
        segment = self.get_object(request, object_id)
        if segment is not None and request.method == "POST":
            try:
                segment_delete(segment=segment)
            except SegmentInvalid as error:
                self.message_user(request, f"Not deleted: {error.errors['key']}.", messages.ERROR)
                return self.response_post_save_change(request, segment)
            self.log_deletion(request, segment, str(segment))
            self.message_user(request, f"Deleted the segment {segment.name}.", messages.SUCCESS)
            return self.response_delete(request, str(segment), object_id)
        return super().delete_view(request, object_id, extra_context)

    @admin.action(
        description="Recompute the members of the selected dynamic and model segments now"
    )
    def recompute(self, request, queryset):
        entered = exited = count = 0
        for segment in queryset.filter(kind__in=RULE_KINDS).order_by("pk"):
            changes = segment_recompute(segment=segment)
            entered, exited, count = entered + changes.entered, exited + changes.exited, count + 1
        skipped = queryset.exclude(kind__in=RULE_KINDS).count()
        self.message_user(
            request,
            f"Recomputed {count} segment{'s' if count != 1 else ''}: {entered} entered, {exited} left."
            + (f" {skipped} static, skipped." if skipped else ""),
            messages.SUCCESS,
        )

    # -- the rule builder's live count, and the chart --------------------------------------

    def get_urls(self):
        from django.urls import path

        preview = self.admin_site.admin_view(require_POST(self.preview_view))
        return [
            path("preview/", preview, name="segments_segment_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request):
        """Count a draft rule as the marketer edits it: JSON in, count and sample out."""
        if not (self.has_add_permission(request) or self.has_change_permission(request)):
            raise PermissionDenied
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return JsonResponse({"errors": {"$": "the body is not JSON"}}, status=400)
        rules = body.get("rules") if isinstance(body, dict) else None
        try:
            count, sample = rule_preview(rules=rules, now=timezone.now())
        except RuleError as error:
            return JsonResponse({"errors": error.as_dict()}, status=400)
        return JsonResponse(
            {
                "count": count,
                "sample": [
                    {
                        "id": customer.pk,
                        "label": customer.external_id or f"anonymous #{customer.pk}",
                    }
                    for customer in sample
                ],
            }
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        other_keys = list(
            Segment.objects.exclude(pk=getattr(obj, "pk", None))
            .order_by("key")
            .values_list("key", flat=True)
        )
        context["builder_options"] = {
            "valueOperators": list(VALUE_OPERATORS),
            "textFields": list(TEXT_FIELDS),
            "dateFields": list(DATE_FIELDS),
            "textOperators": list(TEXT_OPERATORS),
            "dateOperators": list(DATE_OPERATORS),
            "channels": list(CHANNELS),
            "scoreModels": list(SCORE_MODELS),
            "scoreOperators": list(SCORE_OPERATORS),
            "segmentKeys": other_keys,
            "consentTopics": list(
                Topic.objects.filter(is_transactional=False)
                .order_by("key")
                .values_list("key", flat=True)
            ),
            "consentStates": list(CONSENT_STATES),
            "rfmSegments": list(RFM_SEGMENT_NAMES),
            "rfmScores": list(RFM_SCORES),
        }
        if obj is not None and obj.pk:
            context["chart"] = _chart(
                segment_size_history(segment=obj, days=HISTORY_DAYS, now=timezone.now())
            )
            context["current_members"] = segment_member_count(segment=obj)
        return super().render_change_form(request, context, add, change, form_url, obj)


def _chart(history: list[tuple[dt.date, int]]) -> dict:
    """Points of an inline SVG line chart of the size per day."""
    top = max((size for _, size in history), default=0) or 1
    step = CHART_WIDTH / max(len(history) - 1, 1)
    points = " ".join(
        f"{index * step:.1f},{CHART_HEIGHT - size / top * CHART_HEIGHT:.1f}"
        for index, (_, size) in enumerate(history)
    )
    return {
        "points": points,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "top": top,
        "first_day": history[0][0] if history else None,
        "last_day": history[-1][0] if history else None,
        "latest": history[-1][1] if history else 0,
        "days": [{"day": day, "size": size} for day, size in history],
    }
