from django.contrib.postgres.indexes import BrinIndex
from django.db import models
from django.db.models import Q
from django.utils.timezone import now


class Customer(models.Model):
    """One profile per person, however many ids they reached us under."""

    external_id = models.CharField(
        max_length=255, unique=True, null=True, blank=True, help_text="The userId of the source."
    )
    email = models.CharField(max_length=254, blank=True, default="", db_index=True)
    phone = models.CharField(max_length=16, blank=True, default="", help_text="E.164")
    timezone = models.CharField(max_length=64, blank=True, default="", help_text="IANA zone")
    locale = models.CharField(max_length=35, blank=True, default="")
    traits = models.JSONField(default=dict, blank=True)
    first_seen = models.DateTimeField(default=now)
    last_seen = models.DateTimeField(default=now)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["last_seen"])]

    def __str__(self) -> str:
        return self.external_id or f"anonymous #{self.pk}"


class Identity(models.Model):
    """An id a source knows a customer by: a userId or an anonymousId.

    Every id a customer was ever seen with stays here, so events sent under an old id
    after an alias merge still land on the surviving profile.
    """

    class Kind(models.TextChoices):
        USER_ID = "user_id", "User id"
        ANONYMOUS_ID = "anonymous_id", "Anonymous id"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=255)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class Device(models.Model):
    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"
        WEB = "web", "Web push"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="devices")
    platform = models.CharField(max_length=16, choices=Platform.choices)
    token = models.CharField(max_length=4096, unique=True)
    app_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"{self.platform} device of customer {self.customer_id}"


class ApiKey(models.Model):
    """A key for the ingest and REST APIs. Only a hash of the secret is kept."""

    class Scope(models.TextChoices):
        INGEST = "ingest", "Ingest events (write key)"
        READ = "read", "Read"
        WRITE = "write", "Write"
        ADMIN = "admin", "Admin (manage keys)"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part, for lookup.")
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or self.Scope.ADMIN in self.scopes


class Event(models.Model):
    class Type(models.TextChoices):
        TRACK = "track"
        PAGE = "page"
        SCREEN = "screen"
        IDENTIFY = "identify"
        GROUP = "group"
        ALIAS = "alias"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=16, choices=Type.choices)
    name = models.CharField(max_length=255, blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField(help_text="When it happened (clock-skew corrected).")
    received_at = models.DateTimeField(default=now)
    message_id = models.CharField(max_length=255, unique=True)
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True)
    # Set once the reactors have been handed this event; the sweeper looks for NULLs.
    handed_over_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "-timestamp"], name="event_customer_time"),
            models.Index(fields=["name", "timestamp"], name="event_name_time"),
            models.Index(
                fields=["received_at"],
                name="event_not_handed_over",
                condition=Q(handed_over_at__isnull=True),
            ),
            # Events arrive roughly in time order, so a tiny BRIN index serves the
            # retention purge and date browsing of the whole table.
            BrinIndex(fields=["timestamp"], name="event_timestamp_brin"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class CustomerMerge(models.Model):
    """Audit row for an alias merge: which profile was folded into which."""

    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges")
    merged_customer_id = models.BigIntegerField()
    merged_external_id = models.CharField(max_length=255, blank=True, default="")
    merged_identities = models.JSONField(default=list)
    events_moved = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"customer {self.merged_customer_id} merged into {self.survivor_id}"
