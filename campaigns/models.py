from django.db import models
from django.db.models import Q


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Push"
    WEBHOOK = "webhook", "Webhook"


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
