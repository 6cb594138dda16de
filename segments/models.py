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


class ModelVersion(models.Model):
    """One trained model: what it predicts, how it was trained, how well it did on holdout."""

    class Kind(models.TextChoices):
        CHURN = "churn", "Churn propensity"
        PURCHASE = "purchase", "Purchase propensity"
        CLUSTERS = "clusters", "Customer clusters"
        RECOMMENDATIONS = "recommendations", "Item recommendations"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    version = models.PositiveIntegerField()
    parameters = models.JSONField(default=dict)
    features = models.JSONField(default=list, help_text="Feature names, in the model's order.")
    metrics = models.JSONField(default=dict, help_text="Holdout metrics.")
    feature_importances = models.JSONField(default=dict)
    # Per feature: training quantiles and a sample of training values, for drift checks.
    feature_summary = models.JSONField(default=dict)
    # Per feature: the Kolmogorov-Smirnov statistic and p-value of today's values against
    # the training sample, refreshed when customers are scored.
    drift = models.JSONField(default=dict, blank=True)
    drift_checked_at = models.DateTimeField(null=True, blank=True)
    trained_at = models.DateTimeField()
    training_seconds = models.FloatField(default=0)
    artefact = models.BinaryField(help_text="The fitted scikit-learn pipeline (joblib).")
    is_active = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(is_active=True), name="model_one_active_per_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} v{self.version}"


# The kinds that predict a probability per customer and are stored as CustomerScore rows.
PROPENSITY_KINDS = (ModelVersion.Kind.CHURN, ModelVersion.Kind.PURCHASE)


class CustomerScore(models.Model):
    """A customer's latest score of one kind, with the model version that made it."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="scores"
    )
    kind = models.CharField(max_length=32, choices=ModelVersion.Kind.choices)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores")
    score = models.FloatField()
    # The share of scored customers with this score or lower (cume_dist): 1.0 is the top.
    percentile = models.FloatField(default=0)
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "customer"], name="customer_score_one_per_kind")
        ]
        indexes = [models.Index(fields=["kind", "score"], name="customer_score_kind_score")]

    def __str__(self) -> str:
        return f"{self.kind} {self.score:.3f} for customer {self.customer_id}"


class CustomerCluster(models.Model):
    """A customer's cluster in the latest clustering, with the model version that made it."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="cluster"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="cluster_assignments"
    )
    cluster = models.PositiveSmallIntegerField()
    assigned_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["cluster"], name="customer_cluster_cluster")]

    def __str__(self) -> str:
        return f"cluster {self.cluster} for customer {self.customer_id}"


class CustomerRecommendation(models.Model):
    """A customer's top items from the latest recommendations model, best first."""

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="recommendations"
    )
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="recommendations"
    )
    # [{"product_id", "score", "name", "url", "price", "image_url", "category"}, ...]
    items = models.JSONField(default=list)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{len(self.items)} recommendations for customer {self.customer_id}"


class CustomerRFM(models.Model):
    """A customer's RFM scores as of the last refresh (``segments.ml.rfm.rfm_refresh``).

    Only customers with at least one order are scored. Scores are quintiles from 1 to 5
    over the scored customers (ties share the lower score); ``segment`` is the named cell
    of the recency / frequency grid (``segments.rules.rfm``).
    """

    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="rfm"
    )
    recency_days = models.FloatField(help_text="Days since the last order.")
    frequency = models.PositiveIntegerField(help_text="Orders in the last 365 days.")
    monetary = models.FloatField(help_text="Order value in the last 365 days.")
    recency_score = models.PositiveSmallIntegerField()
    frequency_score = models.PositiveSmallIntegerField()
    monetary_score = models.PositiveSmallIntegerField()
    segment = models.CharField(max_length=32)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name = "customer RFM"
        verbose_name_plural = "customer RFM scores"
        indexes = [models.Index(fields=["segment"], name="customer_rfm_segment")]

    def __str__(self) -> str:
        return (
            f"RFM {self.recency_score}{self.frequency_score}{self.monetary_score} "
            f"({self.segment}) for customer {self.customer_id}"
        )
