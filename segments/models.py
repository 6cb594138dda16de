from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q


class Segment(models.Model):
    """A named group of customers, kept current as they act."""

    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Dynamic (rules)"
        STATIC = "static", "Static (uploaded list)"
        MODEL = "model", "Model-based (scores, clusters)"

    key = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"^[a-z0-9][a-z0-9_-]*$",
                "use lower-case letters, digits, - and _, starting with a letter or digit",
            )
        ],
        help_text="Stable name used in rules, events and the API.",
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = models.JSONField(default=dict, blank=True, help_text="The rule, for dynamic segments.")
    # Bumped on every rule change: caches of compiled rules and of the dependency index
    # are keyed by it.
    version = models.PositiveIntegerField(default=1)
    # Set from the rules: recomputed on a schedule because time passing changes who is in.
    is_time_dependent = models.BooleanField(default=False)
    # The version the memberships were last fully computed for: a segment whose rules
    # changed is recomputed by the schedule even if the task enqueued at save was lost.
    computed_version = models.PositiveIntegerField(default=0)
    member_count = models.PositiveIntegerField(default=0)
    last_computed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    """One stay of a customer in a segment: a new row each time they enter."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="segment_memberships"
    )
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "customer"],
                condition=Q(exited_at__isnull=True),
                name="segment_membership_one_open_stay",
            )
        ]
        indexes = [
            models.Index(
                fields=["customer", "segment"],
                condition=Q(exited_at__isnull=True),
                name="segment_membership_current",
            ),
            models.Index(fields=["segment", "entered_at"], name="segment_membership_entered"),
        ]

    def __str__(self) -> str:
        return f"customer {self.customer_id} in {self.segment_id}"

    @property
    def is_current(self) -> bool:
        return self.exited_at is None
