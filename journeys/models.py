from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from customers.models import Customer
from journeys.engine.core import Status as EngineStatus


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"
        ARCHIVED = "archived", "Archived"

    class EntryPolicy(models.TextChoices):
        ONCE = "once", "Once ever"
        ONCE_PER_PERIOD = "once_per_period", "Once per N days"
        AGAIN_AFTER_LEAVING = "again_after_leaving", "Again after leaving"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    entry_policy = models.CharField(
        max_length=24,
        choices=EntryPolicy.choices,
        default=EntryPolicy.AGAIN_AFTER_LEAVING,
        help_text="Whatever the policy, a customer is never in the journey twice at once.",
    )
    entry_period_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="For 'once per N days': N."
    )
    exit_events = models.JSONField(
        default=list, blank=True, help_text="Event names that take a customer out at any moment."
    )
    exit_segments = models.JSONField(
        default=list, blank=True, help_text="Segment keys: leaving one takes a customer out."
    )
    goal_event = models.CharField(max_length=255, blank=True, default="")
    goal_window_hours = models.PositiveIntegerField(null=True, blank=True)
    holdout_share = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=0,
        validators=[MinValueValidator(0), MaxValueValidator(1)],
        help_text="Share of entrants kept out of the whole journey, to measure its lift.",
    )
    # The graph being edited; publishing freezes a copy of it into a new version.
    draft_graph = models.JSONField(default=dict, blank=True)
    live_version = models.ForeignKey(
        "JourneyVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(entry_policy="once_per_period") | Q(entry_period_days__gt=0),
                name="journey_period_for_periodic_entry",
            ),
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0) & Q(holdout_share__lte=1),
                name="journey_holdout_share_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """A published graph. Never edited: a change publishes a new version."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    graph = models.JSONField()
    published_at = models.DateTimeField()
    published_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"


class Enrolment(models.Model):
    Status = models.TextChoices("Status", [(s.name, s.value) for s in EngineStatus])
    RUNNING = (EngineStatus.ACTIVE.value, EngineStatus.WAITING.value)

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments")
    version = models.ForeignKey(JourneyVersion, on_delete=models.PROTECT, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrolments")
    status = models.CharField(max_length=16, choices=Status.choices, default="active")
    current_step = models.CharField(max_length=100, blank=True, default="")
    wake_at = models.DateTimeField(null=True, blank=True)
    awaited_event = models.CharField(max_length=255, blank=True, default="")
    trigger_payload = models.JSONField(default=dict, blank=True)
    # Mirrors "the journey is paused" so the tick's index skips these rows: a paused
    # journey's due customers must not cost every tick a scan.
    journey_paused = models.BooleanField(default=False)
    # Kept out of the whole journey by its holdout share (no step runs; goals still count).
    holdout = models.BooleanField(default=False)
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    # The engine's whole state (journeys.engine.State.to_json()); the columns above mirror
    # what queries need.
    state = models.JSONField(default=dict)

    class Meta:
        indexes = [
            # The tick: due waiting enrolments, oldest first.
            models.Index(
                fields=["wake_at"],
                name="enrolment_due",
                condition=Q(status="waiting", journey_paused=False),
            ),
            # Events resuming the enrolments that wait for them.
            models.Index(
                fields=["customer", "awaited_event"],
                name="enrolment_awaiting",
                condition=Q(status="waiting") & ~Q(awaited_event=""),
            ),
            # Entry policy, exit criteria and goals: one customer's enrolments in a journey.
            models.Index(fields=["customer", "journey", "-entered_at"], name="enrolment_customer"),
            models.Index(fields=["journey", "status"], name="enrolment_journey_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "customer"],
                condition=Q(status__in=["active", "waiting"]),
                name="enrolment_once_at_a_time",
            )
        ]

    def __str__(self) -> str:
        return f"enrolment {self.pk} of customer {self.customer_id} in {self.journey_id}"

    @property
    def is_running(self) -> bool:
        return self.status in self.RUNNING


class EnrolmentTransition(models.Model):
    """Append-only: one row per move of an enrolment, with its reason."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="transitions")
    from_step = models.CharField(max_length=100, blank=True, default="")
    to_step = models.CharField(max_length=100, blank=True, default="")
    reason = models.CharField(max_length=255)
    data = models.JSONField(default=dict, blank=True)
    # What moved it: enrol, event, tick, exit, goal, api, admin.
    actor = models.CharField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["enrolment", "id"], name="transition_enrolment"),
            models.Index(fields=["to_step", "created_at"], name="transition_step_time"),
        ]

    def __str__(self) -> str:
        return f"{self.from_step or '∅'} → {self.to_step or '∅'} ({self.reason})"


class ClockOffset(models.Model):
    """The journeys clock's offset from real time: one row, shared by every process, so
    tests and the demo can move time forward for web, workers and beat alike."""

    offset_seconds = models.FloatField(default=0)

    def __str__(self) -> str:
        return f"clock offset {self.offset_seconds:+.0f}s"
