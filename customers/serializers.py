"""Shapes of the REST API. Validation and normalisation only: writes go through services."""

import re

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.ingest.messages import normalise_email, normalise_phone, valid_time_zones
from customers.models import ApiKey, Customer, Event, Identity

MAX_TRAITS_BYTES = 32 * 1024
MAX_EXTERNAL_ID_LENGTH = 255
# BCP 47 in the shapes sources send: "en", "pt-BR", "zh-Hant-TW", "en_GB".
_LOCALE = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


def is_valid_external_id(value: str) -> bool:
    return 0 < len(value) <= MAX_EXTERNAL_ID_LENGTH and "\x00" not in value


class CustomerSerializer(serializers.ModelSerializer):
    user_ids = serializers.SerializerMethodField(
        help_text="Every user id this profile answers to, merged ones included."
    )
    anonymous_ids = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "external_id",
            "user_ids",
            "anonymous_ids",
            "email",
            "phone",
            "timezone",
            "locale",
            "traits",
            "first_seen",
            "last_seen",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    # Both read the prefetched identities when the selector prefetched them.
    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_user_ids(self, customer: Customer) -> list[str]:
        return _identity_values(customer, Identity.Kind.USER_ID)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_anonymous_ids(self, customer: Customer) -> list[str]:
        return _identity_values(customer, Identity.Kind.ANONYMOUS_ID)


def _identity_values(customer: Customer, kind: str) -> list[str]:
    identities = sorted(customer.identities.all(), key=lambda identity: identity.pk)
    return [identity.value for identity in identities if identity.kind == kind]


class CustomerSearchSerializer(serializers.Serializer):
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=255,
        help_text="An email address (exact, case-insensitive) or the start of an external id.",
    )


class CustomerWriteSerializer(serializers.Serializer):
    """The writable part of a profile.

    PUT replaces the profile: a field left out is cleared. PATCH changes only the fields
    sent, and merges ``traits`` key by key (a key set to null is removed). An empty
    string or null clears email, phone, timezone or locale.
    """

    email = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=254, trim_whitespace=True
    )
    phone = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=32,
        help_text="E.164, e.g. +31612345678 (spaces, dashes and brackets are dropped).",
    )
    timezone = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=64,
        help_text="An IANA time zone, e.g. Europe/Amsterdam.",
    )
    locale = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        max_length=35,
        help_text="A BCP 47 language tag, e.g. en-GB.",
    )
    traits = serializers.DictField(
        required=False,
        help_text="Free-form JSON object. On PATCH, keys are merged; null removes a key.",
    )

    default_error_messages = {"unknown_field": "is not a writable field of a customer"}

    def to_internal_value(self, data):
        if isinstance(data, dict):
            # A profile read with GET may be sent back whole; its read-only parts are ignored,
            # but a misspelt field is an error rather than silently dropped.
            known = set(self.fields) | set(CustomerSerializer.Meta.fields)
            unknown = sorted(set(data) - known)
            if unknown:
                raise serializers.ValidationError(
                    {name: [self.error_messages["unknown_field"]] for name in unknown}
                )
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        # PUT creates by the id in the URL: check it like any other input.
        external_id = self.context.get("external_id")
        if external_id is not None and not is_valid_external_id(external_id):
            raise serializers.ValidationError(
                {
                    "external_id": [
                        f"must be 1 to {MAX_EXTERNAL_ID_LENGTH} characters, without NUL bytes"
                    ]
                }
            )
        return attrs

    def validate_email(self, value: str | None) -> str:
        if not value:
            return ""
        try:
            return normalise_email(value)
        except DjangoValidationError:
            raise serializers.ValidationError("is not a valid email address") from None

    def validate_phone(self, value: str | None) -> str:
        if not value:
            return ""
        try:
            return normalise_phone(value)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages[0]) from None

    def validate_timezone(self, value: str | None) -> str:
        if not value:
            return ""
        if value not in valid_time_zones():
            raise serializers.ValidationError("must be an IANA time zone such as Europe/Amsterdam")
        return value

    def validate_locale(self, value: str | None) -> str:
        if not value:
            return ""
        if not _LOCALE.match(value):
            raise serializers.ValidationError("must be a language tag such as en or pt-BR")
        return value

    def validate_traits(self, value: dict) -> dict:
        try:
            encoded = orjson.dumps(value)
        except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits
            raise serializers.ValidationError(
                "must hold only plain JSON values (numbers within 64 bits)"
            ) from None
        if len(encoded) > MAX_TRAITS_BYTES:
            raise serializers.ValidationError(
                f"must be at most {MAX_TRAITS_BYTES // 1024} KB as JSON"
            )
        if _holds_nul(value):
            # PostgreSQL's jsonb cannot store the NUL character.
            raise serializers.ValidationError("must not contain the NUL character (\\u0000)")
        return value


def _holds_nul(value: object) -> bool:
    # Depth is bounded: orjson has already refused anything nested deeper than 255.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = [
            "id",
            "type",
            "name",
            "properties",
            "context",
            "timestamp",
            "received_at",
            "message_id",
        ]
        read_only_fields = fields


class EventFilterSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=Event.Type.choices, required=False)
    name = serializers.CharField(required=False, max_length=255)


class ApiKeySerializer(serializers.ModelSerializer):
    scopes = serializers.ListField(child=serializers.ChoiceField(choices=ApiKey.Scope.choices))
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "is_active",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
        ]
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices), allow_empty=False
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="The secret. Shown in this answer only: store it now."
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class FieldErrorsSerializer(serializers.Serializer):
    """The body of a 400: each field at fault with its reasons. For the schema only."""


class FieldErrorsSchema(OpenApiSerializerExtension):
    target_class = "customers.serializers.FieldErrorsSerializer"

    def map_serializer(self, auto_schema, direction):
        return {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
