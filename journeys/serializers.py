"""Shapes of the journeys REST API. Validation only: writes go through services."""

from rest_framework import serializers

from journeys.models import Enrolment, EnrolmentTransition, Journey


class ProblemSerializer(serializers.Serializer):
    step = serializers.CharField(allow_null=True, help_text="The step at fault, if any.")
    field = serializers.CharField(help_text="The field inside the step (or the graph).")
    message = serializers.CharField()


class JourneySerializer(serializers.ModelSerializer):
    live_version = serializers.IntegerField(
        source="live_version.number", allow_null=True, read_only=True, default=None
    )
    holdout_share = serializers.FloatField()

    class Meta:
        model = Journey
        fields = [
            "id",
            "name",
            "description",
            "status",
            "entry_policy",
            "entry_period_days",
            "exit_events",
            "exit_segments",
            "goal_event",
            "goal_window_hours",
            "holdout_share",
            "live_version",
            "draft_graph",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class JourneyWriteSerializer(serializers.Serializer):
    """A journey as code (docs/journeys.md); also what create and update accept."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    entry_policy = serializers.ChoiceField(
        choices=Journey.EntryPolicy.choices, default=Journey.EntryPolicy.AGAIN_AFTER_LEAVING
    )
    entry_period_days = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    exit_events = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, default=list
    )
    exit_segments = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list
    )
    goal_event = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    goal_window_hours = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    holdout_share = serializers.DecimalField(
        max_digits=4,
        decimal_places=3,
        min_value=0,
        max_value=1,
        required=False,
        default=0,
        coerce_to_string=False,
    )
    graph = serializers.JSONField(
        required=False, default=dict, help_text="The draft graph; validated on publish."
    )

    def validate_graph(self, graph):
        if not isinstance(graph, dict):
            raise serializers.ValidationError("must be an object with schema and steps")
        return graph

    def validate(self, attrs):
        policy = attrs.get("entry_policy")
        if policy == Journey.EntryPolicy.ONCE_PER_PERIOD and not attrs.get("entry_period_days"):
            raise serializers.ValidationError(
                {"entry_period_days": "is required for the once_per_period entry policy"}
            )
        return attrs


class ValidateSerializer(serializers.Serializer):
    graph = serializers.JSONField()


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    problems = ProblemSerializer(many=True)


class VersionSerializer(serializers.Serializer):
    journey = serializers.IntegerField(source="journey_id")
    number = serializers.IntegerField()
    published_at = serializers.DateTimeField()
    published_by = serializers.CharField()


class EnrolRequestSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255, help_text="The customer's userId.")
    payload = serializers.DictField(
        required=False, default=dict, help_text="The trigger payload the steps can read."
    )


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = EnrolmentTransition
        fields = ["from_step", "to_step", "reason", "data", "actor", "created_at"]


class EnrolmentSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="customer.external_id", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    transitions = serializers.SerializerMethodField()

    class Meta:
        model = Enrolment
        fields = [
            "id",
            "journey",
            "version",
            "external_id",
            "status",
            "current_step",
            "wake_at",
            "awaited_event",
            "trigger_payload",
            "holdout",
            "entered_at",
            "finished_at",
            "converted_at",
            "transitions",
        ]

    def get_transitions(self, enrolment) -> list[dict]:
        rows = enrolment.transitions.order_by("id")
        return TransitionSerializer(rows, many=True).data


class DryRunRequestSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=255)
    payload = serializers.DictField(required=False, default=dict)
    graph = serializers.JSONField(
        required=False, help_text="The graph to try; the journey's draft when omitted."
    )
    until = serializers.DateTimeField(required=False)


class DryRunStepSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    from_step = serializers.CharField(allow_null=True)
    to_step = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    data = serializers.DictField()


class DryRunMessageSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    step = serializers.CharField()
    channel = serializers.CharField()
    template = serializers.IntegerField(allow_null=True)
    topic = serializers.CharField(allow_blank=True)


class DryRunSerializer(serializers.Serializer):
    entered_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()
    current_step = serializers.CharField(allow_null=True)
    wake_at = serializers.DateTimeField(allow_null=True)
    path = DryRunStepSerializer(many=True)
    messages = DryRunMessageSerializer(many=True)


class MigrateSerializer(serializers.Serializer):
    from_version = serializers.IntegerField(min_value=1)
    to_version = serializers.IntegerField(min_value=1)
    step_map = serializers.DictField(
        child=serializers.CharField(),
        help_text="Step of the old version -> step of the new one, for every step customers "
        "wait at (a wait maps to a wait, a wait for an event to a wait for an event).",
    )


class MigratedSerializer(serializers.Serializer):
    migrated = serializers.IntegerField()
