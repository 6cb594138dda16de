from django.db import models
from django.db.models import Q

from consent.channels import Channel


class MessageTemplate(models.Model):
    """A message a marketer writes once and sends many times, in immutable versions."""

    name = models.CharField(max_length=200, unique=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    description = models.TextField(blank=True, default="")
    default_locale = models.CharField(
        max_length=35,
        default="en",
        help_text="The content used when there is none for the customer's locale or language.",
    )
    sample_context = models.JSONField(
        default=dict,
        blank=True,
        help_text="Extra sample data the versions are checked against at save, e.g. "
        '{"customer": {"traits": {"plan": "pro"}}, "event": {"properties": {"total": 12}}}.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"


class TemplateVersion(models.Model):
    """One version of a template. Once published it is never edited: editing makes a new one."""

    template = models.ForeignKey(MessageTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    note = models.CharField(max_length=255, blank=True, default="", help_text="What changed.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["template", "-number"]
        permissions = [
            ("publish_templateversion", "Can publish a template version"),
            ("send_test_message", "Can send a test message of a template version"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["template", "number"], name="template_version_number_unique"
            )
        ]
        indexes = [
            models.Index(
                fields=["template", "-published_at"],
                name="template_version_published",
                condition=Q(published_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.template.name} v{self.number}"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None


class TemplateContent(models.Model):
    """The content of a version in one locale; which fields count depends on the channel."""

    class Method(models.TextChoices):
        POST = "POST"
        PUT = "PUT"
        PATCH = "PATCH"

    version = models.ForeignKey(TemplateVersion, on_delete=models.CASCADE, related_name="contents")
    locale = models.CharField(
        max_length=35, help_text="A locale (fr-CA), a language (fr) or the template default."
    )
    # Email
    subject = models.CharField(max_length=998, blank=True, default="")
    preheader = models.CharField(max_length=255, blank=True, default="")
    html = models.TextField(blank=True, default="", help_text="Email body (HTML).")
    text = models.TextField(
        blank=True, default="", help_text="Plain-text email body; derived from the HTML if empty."
    )
    layout = models.CharField(max_length=64, blank=True, default="base")
    # SMS and push
    body = models.TextField(blank=True, default="")
    # Push
    title = models.CharField(max_length=255, blank=True, default="")
    image_url = models.CharField(max_length=2048, blank=True, default="")
    deep_link = models.CharField(max_length=2048, blank=True, default="")
    data = models.JSONField(
        default=dict, blank=True, help_text="Push data: string keys to template strings."
    )
    # Webhook
    url = models.CharField(max_length=2048, blank=True, default="")
    method = models.CharField(max_length=8, choices=Method.choices, default=Method.POST)
    headers = models.JSONField(default=dict, blank=True, help_text="Header name to template.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "locale"], name="template_content_locale")
        ]

    def __str__(self) -> str:
        return f"{self.version} [{self.locale}]"


# The outbox ----------------------------------------------------------------------------


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    DEFERRED = "deferred", "Deferred"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DELIVERED = "delivered", "Delivered"
    OPENED = "opened", "Opened"
    CLICKED = "clicked", "Clicked"
    BOUNCED = "bounced", "Bounced"
    COMPLAINED = "complained", "Complained"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class MessageOrigin(models.TextChoices):
    JOURNEY = "journey", "Journey step"
    CAMPAIGN = "campaign", "Campaign"
    API = "api", "Direct"


class Message(models.Model):
    """One send to one customer: written first, then claimed, checked and sent once.

    Journeys and campaigns are told apart by ``origin``; journeys sit above this app, so
    their enrolment is kept as plain ids rather than a foreign key.
    """

    # Indexed by ``message_customer``, which leads with it: a second index on the column
    # alone would be one more to write for every message and every change of status.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    template_version = models.ForeignKey(
        TemplateVersion, on_delete=models.PROTECT, related_name="messages"
    )
    topic_key = models.CharField(max_length=64)
    locale = models.CharField(max_length=35, blank=True, default="")
    # Unique by the constraint below, not ``unique=True``: that would add a second,
    # pattern-matching index nothing uses (keys are only ever looked up whole).
    idempotency_key = models.CharField(max_length=255)
    origin = models.CharField(max_length=16, choices=MessageOrigin.choices)
    journey_id = models.BigIntegerField(null=True, blank=True)
    enrolment_id = models.BigIntegerField(null=True, blank=True)
    step_id = models.CharField(max_length=64, blank=True, default="")
    visit = models.PositiveIntegerField(null=True, blank=True)
    campaign_id = models.BigIntegerField(null=True, blank=True)
    variant = models.CharField(max_length=32, blank=True, default="")
    # Extra render context (the triggering event, a webhook's payload); plain JSON.
    context = models.JSONField(default=dict, blank=True)

    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    decision_reason = models.CharField(max_length=32, blank=True, default="")
    decision = models.JSONField(null=True, blank=True, help_text="The consent gate's answer.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.TextField(blank=True, default="")
    provider_id = models.CharField(max_length=255, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    size = models.PositiveIntegerField(null=True, blank=True, help_text="Rendered bytes.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The beat tick: due deferred rows and queued rows a lost task left behind.
            models.Index(
                fields=["next_attempt_at"],
                name="message_waiting",
                condition=Q(status__in=["queued", "deferred"]),
            ),
            models.Index(fields=["customer", "-created_at"], name="message_customer"),
            models.Index(
                fields=["provider_id"], name="message_provider_id", condition=~Q(provider_id="")
            ),
            models.Index(
                fields=["campaign_id", "status"],
                name="message_campaign",
                condition=Q(campaign_id__isnull=False),
            ),
            models.Index(
                fields=["updated_at"], name="message_sending", condition=Q(status="sending")
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="message_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} message #{self.pk} to customer {self.customer_id}"


class MessageStatusChange(models.Model):
    """Append-only: one row per status transition of a message."""

    # Indexed by ``message_change_message``, which leads with it.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="status_changes", db_index=False
    )
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, choices=MessageStatus.choices)
    actor = models.CharField(max_length=64, help_text="Who or what made the change.")
    reason = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["message", "id"]
        indexes = [models.Index(fields=["message", "id"], name="message_change_message")]

    def __str__(self) -> str:
        return f"#{self.message_id}: {self.from_status or '∅'} → {self.to_status}"


class ProviderEvent(models.Model):
    """A delivery event from a provider, kept by its id so a repeated webhook is a no-op."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255)
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="provider_events"
    )
    event_type = models.CharField(max_length=32)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_unique")
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.event_id}"


# Broadcasts ----------------------------------------------------------------------------


class Campaign(models.Model):
    """A broadcast: one template to an audience, with A/B variants and a holdout."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        SENT = "sent", "Sent"
        CANCELLED = "cancelled", "Cancelled"

    class Schedule(models.TextChoices):
        NOW = "now", "As soon as it is started"
        AT = "at", "At a time"
        LOCAL_TIME = "local_time", "At a local time in each customer's zone"
        RECURRING = "recurring", "Recurring (cron)"

    class Metric(models.TextChoices):
        OPENED = "opened", "Open rate"
        CLICKED = "clicked", "Click rate"
        CONVERTED = "converted", "Conversion rate"

    name = models.CharField(max_length=200, unique=True)
    template = models.ForeignKey(MessageTemplate, on_delete=models.PROTECT, related_name="+")
    topic_key = models.CharField(max_length=64, help_text="The consent topic it is sent under.")
    segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty: everyone who may receive the topic on this channel.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    schedule = models.CharField(max_length=16, choices=Schedule.choices, default=Schedule.NOW)
    send_at = models.DateTimeField(null=True, blank=True, help_text="For 'at a time'.")
    local_time = models.TimeField(null=True, blank=True, help_text="For 'at a local time'.")
    cron = models.CharField(
        max_length=100,
        blank=True,
        default="",
        help_text="For recurring: minute hour day-of-month month day-of-week (UTC).",
    )
    throttle_per_minute = models.PositiveIntegerField(
        null=True, blank=True, help_text="Spread the sends: at most this many a minute."
    )
    holdout_percent = models.PositiveSmallIntegerField(
        default=0, help_text="Share of the audience that gets nothing, to measure uplift."
    )
    conversion_event = models.CharField(
        max_length=255, blank=True, default="", help_text="The event that counts as converted."
    )
    conversion_window_hours = models.PositiveIntegerField(default=72)
    pick_winner = models.BooleanField(
        default=False, help_text="Name the best variant on the metric once the test window ends."
    )
    test_window_hours = models.PositiveIntegerField(default=4)
    test_percent = models.PositiveSmallIntegerField(
        default=100,
        help_text="With an automatic winner: the share of the audience outside the holdout "
        "that is in the A/B test. The rest gets the winning variant once the test window "
        "ends. 100: everyone is in the test.",
    )
    winner_metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.CLICKED)
    winner = models.CharField(max_length=32, blank=True, default="")
    winner_picked_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveIntegerField(default=0, help_text="How many times it was sent.")
    snapshot_after = models.BigIntegerField(
        null=True,
        blank=True,
        editable=False,
        help_text="While the latest run's audience is written in chunks: the last customer "
        "id written. Empty once it is all written.",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("approve_campaign", "Can start, pause, resume and cancel a campaign")]

    def __str__(self) -> str:
        return self.name


class CampaignVariant(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    key = models.CharField(max_length=32, help_text="A, B, …")
    template_version = models.ForeignKey(
        TemplateVersion, on_delete=models.PROTECT, related_name="+"
    )
    weight = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["campaign", "key"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "key"], name="campaign_variant_key")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.key}"


class CampaignStatusChange(models.Model):
    """Append-only: who started, paused, resumed or cancelled a campaign, and when."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16)
    to_status = models.CharField(max_length=16)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "id"]

    def __str__(self) -> str:
        return f"{self.campaign_id}: {self.from_status} → {self.to_status}"
