from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from journeys.admin.diagram import journey_svg
from journeys.engine import InvalidGraph
from journeys.models import Journey
from journeys.selectors import journey_results, journey_step_counts
from journeys.services.journeys import (
    SETTINGS_FIELDS,
    JourneyStateError,
    journey_archive,
    journey_create,
    journey_pause,
    journey_publish,
    journey_resume,
    journey_update,
    journey_validate,
)


class JourneyForm(forms.ModelForm):
    draft_graph = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "class": "vLargeTextField"}),
        help_text="The graph being edited (schema in docs/journeys.md). Saving keeps a draft "
        "even with problems; publishing refuses it until every problem beside its step is "
        "fixed.",
        initial=dict,
        required=False,
    )
    exit_events = forms.JSONField(
        required=False, initial=list, help_text='e.g. ["Account Deleted"]'
    )
    exit_segments = forms.JSONField(
        required=False, initial=list, help_text='Segment keys, e.g. ["vip"]'
    )

    class Meta:
        model = Journey
        fields = ["name", "description", *SETTINGS_FIELDS, "draft_graph"]

    def clean_draft_graph(self):
        graph = self.cleaned_data.get("draft_graph") or {}
        if not isinstance(graph, dict):
            raise forms.ValidationError("must be an object with schema and steps")
        return graph

    def _clean_list(self, field):
        value = self.cleaned_data.get(field) or []
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise forms.ValidationError("must be a list of names")
        return value

    def clean_exit_events(self):
        return self._clean_list("exit_events")

    def clean_exit_segments(self):
        return self._clean_list("exit_segments")


@admin.register(Journey)
class JourneyAdmin(admin.ModelAdmin):
    """Journeys are changed through the services: saving edits the draft, the actions
    publish it as a new version and move the journey between its statuses."""

    form = JourneyForm
    list_display = [
        "name",
        "status",
        "live_version_number",
        "entry_policy",
        "running",
        "updated_at",
    ]
    list_filter = ["status", "entry_policy"]
    search_fields = ["name"]
    list_select_related = ["live_version"]
    actions = ["publish", "pause", "resume", "archive"]
    readonly_fields = ["status", "live_version_number", "diagram", "draft_problems", "results"]
    fieldsets = [
        (None, {"fields": ["name", "description", "status", "live_version_number"]}),
        (
            "Entry, exit and goal",
            {
                "fields": [
                    "entry_policy",
                    "entry_period_days",
                    "exit_events",
                    "exit_segments",
                    "goal_event",
                    "goal_window_hours",
                    "holdout_share",
                ]
            },
        ),
        ("Live version", {"fields": ["diagram", "results"]}),
        ("Draft", {"fields": ["draft_problems", "draft_graph"]}),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                running_count=Count(
                    "enrolments", filter=Q(enrolments__status__in=["active", "waiting"])
                )
            )
        )

    @admin.display(description="running", ordering="running_count")
    def running(self, journey):
        return journey.running_count

    @admin.display(description="live version")
    def live_version_number(self, journey):
        return f"v{journey.live_version.number}" if journey.live_version_id else "—"

    @admin.display(
        description="diagram (entered · waiting now · moved on; messages sent · delivered · "
        "opened · clicked)"
    )
    def diagram(self, journey):
        if not journey.pk or not journey.live_version_id:
            return "Not published yet."
        svg = journey_svg(journey.live_version.graph, counts=journey_step_counts(journey=journey))
        # Built from escaped parts only (journeys.admin.diagram).
        return mark_safe(f'<div style="overflow-x:auto">{svg}</div>')  # noqa: S308

    @admin.display(description="problems in the draft")
    def draft_problems(self, journey):
        if not journey.pk:
            return "—"
        problems = journey_validate(graph=journey.draft_graph)
        by_step: dict = {}
        for problem in problems:
            by_step.setdefault(problem.step, []).append(f"{problem.field}: {problem.message}")
        svg = journey_svg(journey.draft_graph, problems=by_step)
        listing = (
            format_html(
                '<ul class="errorlist">{}</ul>',
                format_html_join(
                    "",
                    "<li><strong>{}</strong> · {}: {}</li>",
                    ((p.step or "graph", p.field, p.message) for p in problems),
                ),
            )
            if problems
            else "None: the draft can be published."
        )
        return format_html('{}<div style="overflow-x:auto">{}</div>', listing, mark_safe(svg))  # noqa: S308

    @admin.display(description="results")
    def results(self, journey):
        if not journey.pk:
            return "—"
        result = journey_results(journey=journey)

        def rate(group):
            return "—" if group.rate is None else f"{group.rate:.1%}"

        rows = [result["treated"], result["holdout"], *result["branches"]]
        table = format_html(
            "<table><tr><th>group</th><th>entered</th><th>converted</th><th>rate</th></tr>{}</table>",
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                ((g.label, g.entered, g.converted, rate(g)) for g in rows),
            ),
        )
        interval = result["lift_interval"]
        lift = (
            format_html(
                "<p>Lift against the holdout: {} to {} (95% interval)</p>",
                f"{interval[0]:+.1%}",
                f"{interval[1]:+.1%}",
            )
            if interval
            else "<p>No lift yet: it needs entrants both in the journey and in the holdout.</p>"
        )
        return format_html("{}{}", table, mark_safe(lift))  # noqa: S308

    def save_model(self, request, obj, form, change):
        values = {field: form.cleaned_data[field] for field in SETTINGS_FIELDS}
        if change:
            changes = {
                **values,
                "name": form.cleaned_data["name"],
                "description": form.cleaned_data["description"],
                "draft_graph": form.cleaned_data["draft_graph"],
            }
            try:
                saved = journey_update(journey=obj, changes=changes)
            except JourneyStateError as error:
                self.message_user(request, str(error), messages.ERROR)
                return
        else:
            values.pop("description", None)
            saved = journey_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                graph=form.cleaned_data["draft_graph"],
                **values,
            )
        obj.pk = saved.pk
        obj.refresh_from_db()

    @admin.action(description="Publish the draft as a new version")
    def publish(self, request, queryset):
        for journey in queryset:
            try:
                version = journey_publish(journey=journey, by=request.user.get_username())
            except InvalidGraph as invalid:
                self.message_user(
                    request,
                    f"{journey.name}: not published, {len(invalid.problems)} problem(s): {invalid}",
                    messages.ERROR,
                )
            except JourneyStateError as error:
                self.message_user(request, f"{journey.name}: {error}", messages.ERROR)
            else:
                self.message_user(request, f"{journey.name}: published v{version.number}.")

    def _status_action(self, request, queryset, service, verb):
        done = []
        for journey in queryset:
            try:
                service(journey=journey)
                done.append(journey.name)
            except JourneyStateError as error:
                self.message_user(request, f"{journey.name}: {error}", messages.WARNING)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.")

    @admin.action(description="Pause (stop entries; waiting customers stay)")
    def pause(self, request, queryset):
        self._status_action(request, queryset, journey_pause, "Paused")

    @admin.action(description="Resume")
    def resume(self, request, queryset):
        self._status_action(request, queryset, journey_resume, "Resumed")

    @admin.action(description="Archive (customers inside leave)")
    def archive(self, request, queryset):
        self._status_action(request, queryset, journey_archive, "Archived")

    def has_delete_permission(self, request, obj=None):
        return False  # archive instead: enrolments and their history stay
