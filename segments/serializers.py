"""Shapes of the segments REST API. Rules are checked by the services, at save."""

from rest_framework import serializers

from customers.models import Customer
from segments.models import Segment


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = [
            "key",
            "name",
            "description",
            "kind",
            "rules",
            "version",
            "is_time_dependent",
            "member_count",
            "last_computed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class _StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, rather than dropping a misspelt one silently."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["is not a known field"] for name in unknown}
                )
        return super().to_internal_value(data)


class SegmentCreateSerializer(_StrictSerializer):
    key = serializers.CharField(max_length=64, help_text="Lower-case letters, digits, - and _.")
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, default=Segment.Kind.DYNAMIC)
    rules = serializers.JSONField(
        required=False,
        default=dict,
        help_text="The rule of a dynamic segment, or the one score or cluster condition of a "
        "model-based one (docs/segments.md).",
    )


class SegmentUpdateSerializer(_StrictSerializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    rules = serializers.JSONField(required=False)


class RulePreviewSerializer(_StrictSerializer):
    rules = serializers.JSONField(help_text="A draft rule to count, not stored.")


class RulePreviewResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Customers the rule selects now.")
    sample = serializers.ListField(
        child=serializers.CharField(), help_text="External ids of a few of them."
    )


class SegmentCountSerializer(serializers.Serializer):
    members = serializers.IntegerField(help_text="Customers in the segment now.")
    matching_now = serializers.IntegerField(
        allow_null=True,
        help_text="Customers the rules select at this moment (dynamic segments): differs from "
        "members while a recompute is pending.",
    )


class SegmentMemberSerializer(serializers.ModelSerializer):
    entered_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Customer
        fields = ["external_id", "email", "entered_at"]
        read_only_fields = fields


class StaticListSerializer(_StrictSerializer):
    entries = serializers.ListField(
        child=serializers.CharField(max_length=254, allow_blank=True),
        max_length=100_000,
        help_text="External ids or email addresses: the segment's members become exactly these.",
    )


class StaticListResultSerializer(serializers.Serializer):
    matched = serializers.IntegerField()
    entered = serializers.IntegerField()
    exited = serializers.IntegerField()
    unknown = serializers.ListField(child=serializers.CharField())
