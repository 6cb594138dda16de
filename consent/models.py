from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.timezone import now
from django.utils.translation import gettext_lazy as _

from consent.channels import CONSENT_CHANNEL_CHOICES, CONSENT_CHANNELS
from customers.models import Customer

TRANSACTIONAL_KEY = "transactional"


class Topic(models.Model):
    """What a customer can subscribe to, per channel.

    The built-in ``transactional`` topic (receipts, password resets, confirmations) needs
    no opt-in and cannot be withdrawn, but still respects suppression and erasure.
    """

    class Default(models.TextChoices):
        OPT_IN = "opt_in", _("Opt-in: nothing is sent until the customer agrees")
        OPT_OUT = "opt_out", _("Opt-out: sent until the customer withdraws")

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    channels = ArrayField(
        models.CharField(max_length=16, choices=CONSENT_CHANNEL_CHOICES),
        help_text="The channels this topic is sent on.",
    )
    default = models.CharField(max_length=16, choices=Default.choices, default=Default.OPT_IN)
    double_opt_in = models.BooleanField(
        default=False, help_text="A grant only counts once the customer confirms by a link."
    )
    is_transactional = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_transactional", "name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(double_opt_in=True, default="opt_out"),
                name="topic_double_opt_in_needs_opt_in",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.double_opt_in and self.default == self.Default.OPT_OUT:
            raise ValidationError(
                {"double_opt_in": _("A double opt-in topic must be opt-in by default.")}
            )
        unknown = set(self.channels or []) - set(CONSENT_CHANNELS)
        if unknown or not self.channels:
            raise ValidationError({"channels": _("Choose at least one of email, sms, push.")})


class Action(models.TextChoices):
    GRANT = "grant", _("Granted")
    WITHDRAW = "withdraw", _("Withdrawn")
    PENDING = "pending", _("Pending confirmation")


class Source(models.TextChoices):
    API = "api", _("API")
    PREFERENCE_CENTRE = "preference_centre", _("Preference centre")
    ONE_CLICK_UNSUBSCRIBE = "one_click_unsubscribe", _("One-click unsubscribe")
    ADMIN = "admin", _("Admin")
    IMPORT = "import", _("Import")
    DOUBLE_OPT_IN = "double_opt_in", _("Double opt-in confirmation")
    SMS_KEYWORD = "sms_keyword", _("SMS keyword")
    BOUNCE = "bounce", _("Bounce")
    COMPLAINT = "complaint", _("Complaint")
    IDENTIFY = "identify", _("Identify call")


class ConsentEvent(models.Model):
    """The ledger: one row per consent change, never updated or deleted (erasure only
    strips the personal data in ``evidence``). ``topic`` empty means every topic of the
    channel ("unsubscribe from everything", SMS STOPALL)."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=16, choices=CONSENT_CHANNEL_CHOICES)
    topic = models.ForeignKey(
        Topic, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    source = models.CharField(max_length=32, choices=Source.choices)
    evidence = models.JSONField(default=dict, blank=True)
    actor = models.CharField(
        max_length=150, blank=True, default="", help_text="Who, if not the customer."
    )
    occurred_at = models.DateTimeField(default=now)
    recorded_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "consent ledger row"
        indexes = [models.Index(fields=["customer", "occurred_at"], name="consent_event_customer")]

    def __str__(self) -> str:
        topic = self.topic.key if self.topic_id else "all topics"
        return f"{self.get_action_display()}: {self.channel} / {topic}"


class ConsentState(models.Model):
    """The current state per (customer, channel, topic), derived from the ledger in the
    same transaction; ``rebuild_consent_state`` recomputes it from scratch."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=CONSENT_CHANNEL_CHOICES)
    topic = models.ForeignKey(
        Topic, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=16, choices=Action.choices)
    occurred_at = models.DateTimeField()
    event = models.ForeignKey(ConsentEvent, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "channel", "topic"],
                name="consent_state_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}/{self.topic_id or 'all'}: {self.action}"


class AddressKind(models.TextChoices):
    EMAIL = "email", _("Email address")
    PHONE = "phone", _("Phone number")
    PUSH_TOKEN = "push_token", _("Push token")


class Suppression(models.Model):
    """An address nothing is sent to, whoever it belongs to. Matched by keyed hash; for
    erased customers only the hash is kept, so a re-import is still not messaged."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        COMPLAINT = "complaint", _("Complaint")
        MANUAL = "manual", _("Manual")
        ERASED = "erased", _("Erased customer")

    kind = models.CharField(max_length=16, choices=AddressKind.choices)
    address = models.CharField(
        max_length=4096, blank=True, default="", help_text="Empty for erased customers."
    )
    address_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    note = models.CharField(max_length=255, blank=True, default="")
    created_by = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "address_hash"], name="suppression_unique")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.address or '(erased)'}: {self.reason}"


class SendLog(models.Model):
    """One row per message actually sent, written by the sending app through
    ``consent_record_send``; frequency caps count these."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=16, choices=CONSENT_CHANNEL_CHOICES)
    topic_key = models.CharField(max_length=64)
    is_transactional = models.BooleanField(default=False)
    sent_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["customer", "sent_at"],
                name="sendlog_customer_time",
                condition=Q(is_transactional=False),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}/{self.topic_key} to {self.customer_id} at {self.sent_at}"


class PrivacyRequest(models.Model):
    """The audit trail of exports and erasures: who, when, what."""

    class Kind(models.TextChoices):
        EXPORT = "export", _("Export")
        ERASURE = "erasure", _("Erasure")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    customer_id = models.BigIntegerField(db_index=True)
    requested_by = models.CharField(max_length=150)
    channel = models.CharField(max_length=16, help_text="admin, api or command")
    summary = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        permissions = [
            ("export_customer", "Can export a customer's personal data"),
            ("erase_customer", "Can erase a customer's personal data"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of customer {self.customer_id}"
