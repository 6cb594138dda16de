"""Broadcasts and the outbox in the admin: campaigns with progress and A/B results, and
read-only messages with their consent decision and status history."""

from __future__ import annotations

import functools
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from campaigns.models import (
    Campaign,
    CampaignStatusChange,
    CampaignVariant,
    Message,
    MessageStatusChange,
    TemplateVersion,
)
from campaigns.selectors_broadcasts import (
    HOLDOUT,
    REST,
    VariantResult,
    campaign_progress,
    campaign_results,
    campaign_winner_wait,
)
from campaigns.services.broadcasts import (
    CampaignError,
    campaign_cancel,
    campaign_pause,
    campaign_resume,
    campaign_start,
)
from consent.gate import explain
from consent.services.topics import topic_get

_EDITABLE = [
    "name",
    "template",
    "topic_key",
    "segment",
    "schedule",
    "send_at",
    "local_time",
    "cron",
    "throttle_per_minute",
    "holdout_percent",
    "conversion_event",
    "conversion_window_hours",
    "pick_winner",
    "test_window_hours",
    "test_percent",
    "winner_metric",
]


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = _EDITABLE

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        topic_key = data.get("topic_key")
        template = data.get("template")
        if topic_key:
            topic = topic_get(key=topic_key)
            if topic is None:
                self.add_error("topic_key", "No such topic.")
            elif template is not None and template.channel not in topic.channels:
                self.add_error("topic_key", f"This topic is not sent on {template.channel}.")
        schedule = data.get("schedule")
        if schedule == Campaign.Schedule.AT and not data.get("send_at"):
            self.add_error("send_at", "Required when sending at a time.")
        if schedule == Campaign.Schedule.LOCAL_TIME and not data.get("local_time"):
            self.add_error("local_time", "Required when sending at a local time.")
        if schedule == Campaign.Schedule.RECURRING and len((data.get("cron") or "").split()) != 5:
            self.add_error("cron", "Five fields: minute hour day-of-month month day-of-week.")
        if (data.get("holdout_percent") or 0) > 50:
            self.add_error("holdout_percent", "At most 50.")
        if data.get("throttle_per_minute") == 0:
            self.add_error("throttle_per_minute", "Leave empty for no throttle, or above 0.")
        test_percent = data.get("test_percent")
        if test_percent is not None and not 1 <= test_percent <= 100:
            self.add_error("test_percent", "Between 1 and 100.")
        elif test_percent is not None and test_percent < 100:
            if not data.get("pick_winner"):
                self.add_error(
                    "test_percent", "Below 100 only with an automatic winner to send the rest."
                )
            elif schedule == Campaign.Schedule.RECURRING:
                self.add_error("test_percent", "A recurring campaign tests on everyone: use 100.")
        return data


class CampaignVariantInline(admin.TabularInline):
    model = CampaignVariant
    extra = 0
    min_num = 1
    fields = ["key", "template_version", "weight"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "template_version":
            kwargs["queryset"] = TemplateVersion.objects.filter(
                published_at__isnull=False
            ).select_related("template")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            obj is None or obj.status == Campaign.Status.DRAFT
        ) and super().has_change_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (obj is None or obj.status == Campaign.Status.DRAFT) and super().has_add_permission(
            request, obj
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            obj is None or obj.status == Campaign.Status.DRAFT
        ) and super().has_delete_permission(request, obj)


class CampaignStatusChangeInline(admin.TabularInline):
    model = CampaignStatusChange
    verbose_name_plural = "Audit trail"
    fields = ["created_at", "actor", "from_status", "to_status", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ["name", "status", "schedule", "template", "progress_summary", "started_at"]
    list_filter = ["status", "schedule"]
    search_fields = ["name"]
    list_select_related = ["template"]
    autocomplete_fields = ["template", "segment"]
    inlines = [CampaignVariantInline, CampaignStatusChangeInline]
    actions = ["start", "pause", "resume", "cancel"]
    fieldsets = [
        (None, {"fields": ["name", "template", "topic_key", "segment"]}),
        (
            "Schedule",
            {"fields": ["schedule", "send_at", "local_time", "cron", "throttle_per_minute"]},
        ),
        (
            "Experiment",
            {
                "fields": [
                    "holdout_percent",
                    "conversion_event",
                    "conversion_window_hours",
                    "pick_winner",
                    "test_window_hours",
                    "test_percent",
                    "winner_metric",
                ]
            },
        ),
        (
            "Progress and results",
            {
                "fields": [
                    "status",
                    "runs",
                    "winner",
                    "ab_test",
                    "started_at",
                    "finished_at",
                    "progress",
                    "results",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None) -> list[str]:
        shown = [
            "status",
            "runs",
            "winner",
            "ab_test",
            "started_at",
            "finished_at",
            "progress",
            "results",
        ]
        if obj is not None and obj.status != Campaign.Status.DRAFT:
            # Once started, what was sent is what the results describe.
            return _EDITABLE + shown
        return shown

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("campaigns.approve_campaign")

    # Read-only displays --------------------------------------------------------------
    @admin.display(description="Progress")
    def progress_summary(self, campaign: Campaign) -> str:
        if campaign.status == Campaign.Status.DRAFT:
            return "—"
        counts = campaign_progress(campaign_id=campaign.pk)
        total = sum(counts.values())
        waiting = sum(counts.get(status, 0) for status in ("queued", "deferred", "sending"))
        summary = f"{total - waiting} of {total} done"
        if campaign.snapshot_after is not None:
            summary += " so far; the audience is still being written"
        return summary

    @admin.display(description="Messages by status")
    def progress(self, campaign: Campaign) -> SafeString | str:
        if campaign.pk is None:
            return "—"
        counts = campaign_progress(campaign_id=campaign.pk)
        if not counts:
            return "Nothing sent yet."
        return format_html(
            "<table><tr>{}</tr><tr>{}</tr></table>",
            format_html_join("", "<th>{}</th>", ((status,) for status in sorted(counts))),
            format_html_join("", "<td>{}</td>", ((counts[status],) for status in sorted(counts))),
        )

    @admin.display(description="A/B test")
    def ab_test(self, campaign: Campaign) -> str:
        if not campaign.pick_winner:
            return "No automatic winner."
        metric = campaign.get_winner_metric_display().lower()
        if campaign.pk is None or campaign.started_at is None:
            return (
                f"The winner on {metric} is picked {campaign.test_window_hours} h after the start."
            )
        rest = next(
            (row for row in campaign_results(campaign=campaign) if row.variant == REST), None
        )
        if not campaign.winner:
            waiting = f"; {rest.recipients} in the rest wait for it" if rest else ""
            return f"Testing on {metric}: {_why_no_winner_yet(campaign)}{waiting}."
        picked = (
            f"{campaign.winner_picked_at:%Y-%m-%d %H:%M} UTC" if campaign.winner_picked_at else ""
        )
        summary = f"Winner {campaign.winner} on {metric}, picked {picked}."
        if rest:
            summary += f" The rest get {campaign.winner}: {rest.sent} of {rest.recipients} sent."
        return summary

    @admin.display(description="Results per variant")
    def results(self, campaign: Campaign) -> SafeString | str:
        if campaign.pk is None:
            return "—"
        rows = campaign_results(campaign=campaign)
        if not rows:
            return "No recipients yet."
        metric = campaign.winner_metric
        table = format_html(
            "<table><tr><th>Variant</th><th>Recipients</th><th>Sent</th><th>Delivered</th>"
            "<th>Opened</th><th>Clicked</th><th>Converted</th><th>{}</th>"
            "<th>Uplift over holdout</th><th>Confidence</th></tr>{}</table>",
            campaign.get_winner_metric_display(),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (
                        _variant_label(row.variant, campaign),
                        row.recipients,
                        row.sent,
                        row.delivered,
                        row.opened,
                        row.clicked,
                        row.converted,
                        "—" if row.variant == HOLDOUT else f"{row.rate(metric) * 100:.1f}%",
                        "—" if row.uplift is None else f"{row.uplift * 100:+.2f} pts",
                        "—" if row.confidence is None else f"{row.confidence * 100:.1f}%",
                    )
                    for row in rows
                ),
            ),
        )
        return format_html("{}{}", table, results_chart(rows))

    # Actions -------------------------------------------------------------------------
    def _each(self, request: HttpRequest, queryset: QuerySet, verb: str, service) -> None:
        for campaign in queryset:
            try:
                outcome = service(campaign_id=campaign.pk, actor=request.user.get_username())
            except CampaignError as error:
                self.message_user(
                    request, f"{campaign}: not {verb}: {error.message}", messages.ERROR
                )
            else:
                self.message_user(request, f"{campaign}: {verb} ({outcome}).", messages.SUCCESS)

    @admin.action(description="Start the selected campaigns", permissions=["approve"])
    def start(self, request: HttpRequest, queryset: QuerySet) -> None:
        # A big audience's first chunk is written in the request, the rest by a task.
        start = functools.partial(campaign_start, rest_in_background=True)
        self._each(request, queryset, "started", start)

    @admin.action(description="Pause the selected campaigns", permissions=["approve"])
    def pause(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "paused", _count("messages held", campaign_pause))

    @admin.action(description="Resume the selected campaigns", permissions=["approve"])
    def resume(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "resumed", _count("messages due again", campaign_resume))

    @admin.action(description="Cancel the selected campaigns", permissions=["approve"])
    def cancel(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "cancelled", _count("messages skipped", campaign_cancel))


def _why_no_winner_yet(campaign: Campaign) -> str:
    """The rule of selectors_broadcasts.winner_wait, as the marketer sees it."""
    wait = campaign_winner_wait(campaign=campaign)
    window = f"{campaign.test_window_hours} h"
    cap = f"{wait.cap_at:%Y-%m-%d %H:%M} UTC"
    if campaign.status == Campaign.Status.PAUSED:
        return "paused, so no winner is picked until it is resumed"
    if wait.unsent:
        return (
            f"{wait.unsent} test messages not sent yet (queued, deferred or sending); the "
            f"winner is picked {window} after the last one is sent, at the latest {cap}"
        )
    if wait.due(timezone.now()):
        return (
            f"the test ended {wait.pick_at:%Y-%m-%d %H:%M} UTC; "
            "the winner is picked at the next campaigns tick"
        )
    if wait.at_cap:
        return f"until {cap}, the latest the winner waits"
    since = (
        f"{window} after the last test message was sent"
        if wait.last_sent_at and wait.last_sent_at > campaign.started_at
        else f"{window} after the start"
    )
    return f"until {wait.pick_at:%Y-%m-%d %H:%M} UTC, {since}"


def _variant_label(variant: str, campaign: Campaign) -> str:
    if variant == REST:
        if campaign.winner:
            return f"rest (gets {campaign.winner})"
        return "rest (waiting for the winner)"
    return variant + (" (winner)" if variant == campaign.winner else "")


def _count(label: str, service):
    def call(**kwargs: Any) -> str:
        return f"{service(**kwargs)} {label}"

    return call


_COLOURS = {"opened": "#79aec8", "clicked": "#417690", "converted": "#f5dd5d"}


def results_chart(rows: list[VariantResult]) -> SafeString:
    """Open, click and conversion rates per variant as grouped bars (inline SVG)."""
    metrics = ["opened", "clicked", "converted"]
    bar, gap, height = 18, 24, 120
    width = len(rows) * (len(metrics) * bar + gap) + gap
    rates = {
        (row.variant, metric): (
            row.conversion_rate
            if metric == "converted"
            else (getattr(row, metric) / row.sent if row.sent else 0.0)
        )
        for row in rows
        for metric in metrics
    }
    top = max(rates.values(), default=0) or 1
    parts = []
    for index, row in enumerate(rows):
        left = gap + index * (len(metrics) * bar + gap)
        for offset, metric in enumerate(metrics):
            rate = rates[(row.variant, metric)]
            size = round(height * rate / top)
            parts.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}">'
                    "<title>{} {}: {}%</title></rect>",
                    left + offset * bar,
                    height - size + 10,
                    bar - 2,
                    size,
                    _COLOURS[metric],
                    row.variant,
                    metric,
                    f"{rate * 100:.1f}",
                )
            )
        parts.append(
            format_html(
                '<text x="{}" y="{}" font-size="11">{}</text>',
                left,
                height + 25,
                row.variant if row.variant != HOLDOUT else "holdout",
            )
        )
    legend = format_html_join(
        "",
        '<text x="{}" y="12" font-size="11" fill="{}">■ {}</text>',
        ((8 + index * 80, _COLOURS[metric], metric) for index, metric in enumerate(metrics)),
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Rates per variant" '
        'width="{}" height="{}" viewBox="0 0 {} {}">{}{}</svg>',
        max(width, 260),
        height + 35,
        max(width, 260),
        height + 35,
        legend,
        SafeString("".join(parts)),
    )


class MessageStatusChangeInline(admin.TabularInline):
    model = MessageStatusChange
    verbose_name_plural = "Status history"
    fields = ["created_at", "actor", "from_status", "to_status", "reason", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """The outbox, read-only: what was sent, to whom, why or why not."""

    list_display = [
        "id",
        "customer_id",
        "channel",
        "status",
        "decision_reason",
        "origin",
        "campaign_id",
        "variant",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "channel", "origin", "decision_reason"]
    search_fields = ["=id", "=customer__id", "=idempotency_key", "=provider_id"]
    list_select_related = ["template_version__template"]
    inlines = [MessageStatusChangeInline]
    readonly_fields = ["decision_explained"]
    show_full_result_count = False

    def get_fields(self, request: HttpRequest, obj: Message | None = None) -> list[str]:
        return [
            "customer",
            "channel",
            "template_version",
            "topic_key",
            "locale",
            "idempotency_key",
            "origin",
            "journey_id",
            "enrolment_id",
            "step_id",
            "campaign_id",
            "variant",
            "status",
            "decision_explained",
            "attempts",
            "next_attempt_at",
            "failure_reason",
            "provider_id",
            "subject",
            "size",
            "created_at",
            "sent_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Message | None = None) -> list[str]:
        return self.get_fields(request, obj)

    @admin.display(description="Consent decision")
    def decision_explained(self, message: Message) -> str:
        return explain(message.decision) if message.decision else "Not asked yet."

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
