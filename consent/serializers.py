from rest_framework import serializers

from consent.channels import CONSENT_CHANNELS
from consent.models import Action, ConsentEvent, Source

# What an API client may state as the source of a change; the rest are our own pages.
API_SOURCES = [Source.API, Source.IMPORT, Source.BOUNCE, Source.COMPLAINT, Source.IDENTIFY]


class EvidenceSerializer(serializers.Serializer):
    ip = serializers.IPAddressField(required=False)
    user_agent = serializers.CharField(required=False, max_length=500)
    wording_version = serializers.CharField(required=False, max_length=200)
    page = serializers.CharField(required=False, max_length=2000)
    note = serializers.CharField(required=False, max_length=2000)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = set(data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError(
                    f"unknown key {', '.join(sorted(unknown))}; use {', '.join(self.fields)}"
                )
        return super().to_internal_value(data)


class TopicStatusSerializer(serializers.Serializer):
    topic = serializers.CharField(source="topic.key")
    name = serializers.CharField(source="topic.name")
    status = serializers.SerializerMethodField(
        help_text="granted, no_consent, withdrawn or pending_confirmation"
    )
    subscribed = serializers.BooleanField()

    def get_status(self, preference) -> str:
        return "granted" if preference.status == "allowed" else preference.status


class ChannelStatusSerializer(serializers.Serializer):
    channel = serializers.CharField()
    all_topics_withdrawn = serializers.BooleanField(source="withdrawn_all")
    topics = TopicStatusSerializer(many=True)


class ConsentOverviewSerializer(serializers.Serializer):
    customer = serializers.CharField()
    channels = ChannelStatusSerializer(many=True)


class ConsentChangeSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=CONSENT_CHANNELS)
    topic = serializers.CharField(
        allow_null=True, help_text="A topic key; null for every topic of the channel."
    )
    status = serializers.ChoiceField(choices=["granted", "withdrawn"])


class ConsentPutSerializer(serializers.Serializer):
    consents = ConsentChangeSerializer(many=True, allow_empty=False)
    evidence = EvidenceSerializer(required=False)


class ConsentEventSerializer(serializers.ModelSerializer):
    topic = serializers.CharField(source="topic.key", allow_null=True, default=None)

    class Meta:
        model = ConsentEvent
        fields = [
            "id",
            "channel",
            "topic",
            "action",
            "source",
            "evidence",
            "actor",
            "occurred_at",
            "recorded_at",
        ]


class ConsentEventCreateSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=CONSENT_CHANNELS)
    topic = serializers.CharField(allow_null=True, required=False, default=None)
    action = serializers.ChoiceField(
        choices=[Action.GRANT, Action.WITHDRAW],
        help_text="A grant of a double opt-in topic is recorded as pending and a "
        "confirmation is sent, unless the source is import.",
    )
    source = serializers.ChoiceField(choices=API_SOURCES, default=Source.API)
    evidence = EvidenceSerializer(required=False)
    occurred_at = serializers.DateTimeField(required=False)
