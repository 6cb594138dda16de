"""Creating, changing and deleting segments. Rules are validated here, at save."""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from consent.models import Topic
from segments.models import ModelVersion, Segment
from segments.rules import RuleError, rule_dependencies, segment_references, validate_rule
from segments.rules.dependencies import conditions_of_kind

logger = logging.getLogger(__name__)

# The conditions a model-based segment can be defined by.
MODEL_CONDITIONS = ("score", "cluster")
# Words the REST API uses in paths next to segment keys.
RESERVED_KEYS = frozenset({"preview"})


class SegmentInvalid(ValueError):
    """A segment that cannot be saved; ``errors`` maps each field to its faults.

    For ``rules`` the faults are a mapping from JSON path to reason.
    """

    def __init__(self, errors: dict[str, str | dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {fault}" for field, fault in errors.items()))


def segment_validate(*, segment: Segment) -> None:
    """Raise ``SegmentInvalid`` with every fault of an (unsaved) segment; the admin form and
    the services share it."""
    errors: dict = {}
    try:
        segment.full_clean(exclude=["rules", "version", "member_count"], validate_unique=True)
    except ValidationError as error:
        for field, messages in getattr(error, "message_dict", {}).items():
            errors[field] = " ".join(messages)
    if segment.key in RESERVED_KEYS:
        errors["key"] = f"{segment.key} is reserved; choose another key"
    if segment.kind == Segment.Kind.DYNAMIC:
        try:
            validate_rule(segment.rules)
        except RuleError as error:
            errors["rules"] = error.as_dict()
        else:
            faults = _reference_faults(segment) | _consent_faults(segment.rules)
            if faults:
                errors["rules"] = faults
    elif segment.kind == Segment.Kind.MODEL:
        faults = _model_faults(segment.rules)
        if faults:
            errors["rules"] = faults
    elif segment.rules:
        errors["rules"] = {
            "$": f"only dynamic and model-based segments have rules, not {segment.kind} ones"
        }
    if errors:
        raise SegmentInvalid(errors)


def _reference_faults(segment: Segment) -> dict[str, str]:
    """Segments named in the rule must exist and must not lead back to this one."""
    faults: dict[str, str] = {}
    rules_by_key = dict(
        Segment.objects.filter(kind=Segment.Kind.DYNAMIC).values_list("key", "rules")
    )
    known = set(Segment.objects.values_list("key", flat=True))
    for path, key in segment_references(segment.rules):
        if key == segment.key:
            faults[path] = "a segment cannot contain itself"
        elif key not in known:
            faults[path] = f"there is no segment with the key {key}"
        elif _reaches(key, segment.key, rules_by_key):
            faults[path] = f"segment {key} depends on this segment: that would be a cycle"
    return faults


def _consent_faults(rules: dict) -> dict[str, str]:
    """Consent conditions must name a topic that exists and is sent on the channel."""
    faults: dict[str, str] = {}
    found = conditions_of_kind(rules, "consent")
    if not found:
        return faults
    channels = dict(Topic.objects.values_list("key", "channels"))
    for path, body in found:
        if body["topic"] not in channels:
            faults[f"{path}.topic"] = f"there is no consent topic with the key {body['topic']}"
        elif body["channel"] not in channels[body["topic"]]:
            faults[f"{path}.channel"] = (
                f"topic {body['topic']} is not sent on {body['channel']} "
                f"(only {', '.join(channels[body['topic']])})"
            )
    return faults


def _model_faults(rules: dict) -> dict[str, str]:
    """A model-based segment is one ``score`` or ``cluster`` condition; clusters must be
    clusters of the active clustering."""
    if not isinstance(rules, dict) or len(rules) != 1 or next(iter(rules)) not in MODEL_CONDITIONS:
        return {"$": "a model-based segment is one score or cluster condition"}
    try:
        validate_rule(rules)
    except RuleError as error:
        return error.as_dict()
    if "cluster" in rules:
        described = active_clusters()
        if described is None:
            return {"$.cluster": "there is no active clustering: train one first"}
        unknown = sorted(set(rules["cluster"]["in"]) - {c["cluster"] for c in described})
        if unknown:
            return {
                "$.cluster.in": f"the active clustering has no cluster {', '.join(map(str, unknown))}"
            }
    return {}


def active_clusters() -> list[dict] | None:
    """The described clusters of the active clustering, or None without one."""
    metrics = (
        ModelVersion.objects.filter(kind=ModelVersion.Kind.CLUSTERS, is_active=True)
        .values_list("metrics", flat=True)
        .first()
    )
    return None if metrics is None else list(metrics.get("clusters", []))


def _reaches(start: str, target: str, rules_by_key: dict[str, dict]) -> bool:
    seen, stack = set(), [start]
    while stack:
        key = stack.pop()
        if key == target:
            return True
        if key in seen or key not in rules_by_key:
            continue
        seen.add(key)
        stack.extend(reference for _, reference in segment_references(rules_by_key[key]))
    return False


def _recompute_on_commit(segment: Segment) -> None:
    if segment.kind not in (Segment.Kind.DYNAMIC, Segment.Kind.MODEL):
        return
    segment_id = segment.pk

    def publish() -> None:
        from segments.tasks import segment_recompute_task

        try:
            segment_recompute_task.apply_async(args=[segment_id], retry=False)
        except Exception:
            # The schedule recomputes segments whose version was never computed.
            logger.warning(
                "could not enqueue a segment recompute", extra={"segment_id": segment_id}
            )

    transaction.on_commit(publish)


def _derive(segment: Segment) -> None:
    segment.is_time_dependent = segment.kind == Segment.Kind.DYNAMIC and (
        rule_dependencies(segment.rules).time_dependent
    )


@transaction.atomic
def segment_create(
    *,
    key: str,
    name: str,
    kind: str = Segment.Kind.DYNAMIC,
    rules: dict | None = None,
    description: str = "",
) -> Segment:
    """Create a segment; its members are computed by ``segment_recompute``."""
    segment = Segment(
        key=key.strip(), name=name.strip(), kind=kind, rules=rules or {}, description=description
    )
    segment_validate(segment=segment)
    _derive(segment)
    segment.save()
    _recompute_on_commit(segment)
    return segment


@transaction.atomic
def segment_update(*, segment: Segment, **changes) -> Segment:
    """Change name, description or rules; a rule change bumps the version.

    The key and the kind are fixed once created: rules, events and journeys refer to them.
    """
    unknown = set(changes) - {"name", "description", "rules"}
    if unknown:
        raise SegmentInvalid({field: "cannot be changed" for field in sorted(unknown)})
    segment = Segment.objects.select_for_update().get(pk=segment.pk)
    rules_changed = "rules" in changes and changes["rules"] != segment.rules
    for field, value in changes.items():
        setattr(segment, field, value.strip() if isinstance(value, str) else value)
    segment_validate(segment=segment)
    _derive(segment)
    fields = [*changes, "is_time_dependent", "updated_at"]
    if rules_changed:
        segment.version = F("version") + 1
        fields.append("version")
    segment.save(update_fields=fields)
    segment.refresh_from_db()
    if rules_changed:
        _recompute_on_commit(segment)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Delete a segment no other segment refers to (its memberships go with it)."""
    users = [
        other.key
        for other in Segment.objects.filter(kind=Segment.Kind.DYNAMIC).exclude(pk=segment.pk)
        if segment.key in {key for _, key in segment_references(other.rules)}
    ]
    if users:
        raise SegmentInvalid({"key": f"used in the rules of {', '.join(sorted(users))}"})
    segment.delete()
