import orjson
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from journeys.admin.diagram import journey_svg
from journeys.admin.rule_builder import builder_options, condition_preview
from journeys.admin.step_forms import FORMS
from journeys.engine import InvalidGraph
from journeys.engine.graph import validate_step_config
from journeys.models import Journey
from journeys.ports import ports
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
    readonly_fields = [
        "status",
        "live_version_number",
        "diagram",
        "draft_problems",
        "draft_steps",
        "results",
    ]
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
        ("Draft", {"fields": ["draft_steps", "draft_problems", "draft_graph"]}),
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

    @admin.display(description="steps of the draft")
    def draft_steps(self, journey):
        if not journey.pk:
            return "Save the journey, then add its steps here."
        graph = journey.draft_graph if isinstance(journey.draft_graph, dict) else {}
        steps = [s for s in graph.get("steps", []) if isinstance(s, dict) and "id" in s]
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:journeys_journey_step_change", args=[journey.pk, s["id"]]),
                    s["id"],
                    s.get("kind", ""),
                    ", ".join(f"{name} → {target}" for name, target in s.get("exits", {}).items()),
                )
                for s in steps
            ),
        )
        adders = format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:journeys_journey_step_add", args=[journey.pk, kind]), label)
                for kind, label in STEP_KINDS
            ),
        )
        return format_html(
            "<table><tr><th>step</th><th>kind</th><th>exits</th></tr>{}</table><p>Add a step: {}</p>",
            rows,
            adders,
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:journey_id>/steps/add/<str:kind>/",
                view(self.step_view),
                name="journeys_journey_step_add",
            ),
            path(
                "<int:journey_id>/steps/<str:step_id>/delete/",
                view(self.step_delete_view),
                name="journeys_journey_step_delete",
            ),
            path(
                "<int:journey_id>/steps/<str:step_id>/",
                view(self.step_view),
                name="journeys_journey_step_change",
            ),
            *super().get_urls(),
        ]

    def _draft_for_change(self, request, journey_id):
        journey = get_object_or_404(Journey, pk=journey_id)
        if not self.has_change_permission(request, journey):
            raise PermissionDenied
        graph = journey.draft_graph if isinstance(journey.draft_graph, dict) else {}
        steps = [s for s in graph.get("steps", []) if isinstance(s, dict) and "id" in s]
        return journey, {**graph, "schema": graph.get("schema", 1), "steps": steps}

    def step_view(self, request, journey_id, kind=None, step_id=None):
        journey, graph = self._draft_for_change(request, journey_id)
        current = None
        if step_id is not None:
            current = next((s for s in graph["steps"] if s["id"] == step_id), None)
            if current is None:
                raise Http404("no such step in the draft")
            kind = current.get("kind")
        form_class = FORMS.get(kind)
        if form_class is None:
            raise Http404("no such kind of step")
        others = [s["id"] for s in graph["steps"] if s["id"] != step_id]
        if request.method == "POST" and request.content_type == "application/json":
            # The rule builder on a condition step asks for a live count.
            if kind != "condition":
                raise Http404("only condition steps have a live count")
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                return JsonResponse({"errors": {"$": "the body is not JSON"}}, status=400)
            return condition_preview(request, body.get("rules") if isinstance(body, dict) else None)
        if request.method == "POST":
            form = form_class(request.POST, step_ids=others)
            if form.is_valid():
                new_step = form.to_step()
                if new_step["id"] in others:
                    form.add_error("id", "another step has this id")
                for problem in validate_step_config(
                    new_step, conditions=ports.conditions, templates=ports.templates
                ):
                    form.add_problem(problem.field, problem.message)
            if form.is_valid():
                journey_update(
                    journey=journey,
                    changes={"draft_graph": _with_step(graph, step_id, new_step)},
                )
                self.message_user(request, f"Step {new_step['id']} saved in the draft.")
                return HttpResponseRedirect(
                    reverse("admin:journeys_journey_change", args=[journey.pk])
                )
        elif current is not None:
            form = form_class(initial=form_class.initial_for(current), step_ids=others)
        else:
            taken = {s["id"] for s in graph["steps"]}
            suggestion = next(f"{kind}_{n}" for n in range(1, 1000) if f"{kind}_{n}" not in taken)
            form = form_class(initial={"id": suggestion}, step_ids=others)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Step {step_id}" if step_id else f"New {dict(STEP_KINDS)[kind]} step",
            "kind_label": dict(STEP_KINDS)[kind],
            "form": form,
            "journey": journey,
            "step_id": step_id,
            "opts": self.model._meta,
            "builder_options": builder_options() if kind == "condition" else None,
        }
        return TemplateResponse(request, "admin/journeys/step_form.html", context)

    def step_delete_view(self, request, journey_id, step_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        journey, graph = self._draft_for_change(request, journey_id)
        if not any(s["id"] == step_id for s in graph["steps"]):
            raise Http404("no such step in the draft")
        journey_update(journey=journey, changes={"draft_graph": _without_step(graph, step_id)})
        self.message_user(request, f"Step {step_id} removed from the draft.")
        return HttpResponseRedirect(reverse("admin:journeys_journey_change", args=[journey.pk]))

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


STEP_KINDS = [
    ("trigger", "trigger"),
    ("wait", "wait"),
    ("wait_for_event", "wait for an event"),
    ("condition", "condition"),
    ("split", "split"),
    ("send", "send"),
    ("send_best_channel", "send on the best channel"),
    ("update_profile", "update the profile"),
    ("webhook", "webhook"),
    ("exit", "exit"),
]


def _with_step(graph: dict, old_id: str | None, step: dict) -> dict:
    """The graph with ``step`` added, or replacing ``old_id`` (exits follow a new id)."""
    steps = []
    for existing in graph["steps"]:
        if existing["id"] == old_id:
            steps.append(step)
            continue
        exits = {
            name: (step["id"] if target == old_id else target)
            for name, target in existing.get("exits", {}).items()
        }
        steps.append({**existing, "exits": exits})
    if old_id is None:
        steps.append(step)
    return {**graph, "steps": steps}


def _without_step(graph: dict, step_id: str) -> dict:
    steps = []
    for existing in graph["steps"]:
        if existing["id"] == step_id:
            continue
        exits = {n: t for n, t in existing.get("exits", {}).items() if t != step_id}
        steps.append({**existing, "exits": exits})
    return {**graph, "steps": steps}
