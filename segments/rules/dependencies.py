"""What can change a rule's outcome: which events, traits, fields, segments, and time."""

from dataclasses import dataclass, field

from segments.rules.validation import RELATIVE_DATE_OPERATORS


@dataclass
class Dependencies:
    event_names: set[str] = field(default_factory=set)
    # Top-level trait keys ("address" for "address.city").
    trait_keys: set[str] = field(default_factory=set)
    profile_fields: set[str] = field(default_factory=set)
    segment_keys: set[str] = field(default_factory=set)
    channels: set[str] = field(default_factory=set)
    # Model kinds whose scores (or "clusters", whose assignments) the rule reads: scoring
    # or reclustering re-evaluates it.
    score_kinds: set[str] = field(default_factory=set)
    # Consent topics the rule reads (their state changes outside ingested events).
    consent_topics: set[str] = field(default_factory=set)
    # The rule reads RFM scores, which are refreshed over the whole base on the schedule.
    uses_rfm: bool = False
    # The outcome can change with no event at all, as the clock moves (or, for consent and
    # RFM, through a change no ingested event carries): recomputed on the schedule.
    time_dependent: bool = False


def rule_dependencies(rule: dict) -> Dependencies:
    """The inputs of a (valid) rule."""
    dependencies = Dependencies()
    _collect(rule, dependencies)
    return dependencies


def _collect(rule: dict, found: Dependencies) -> None:
    kind, body = next(iter(rule.items()))
    if kind in ("all", "any"):
        for child in body:
            _collect(child, found)
    elif kind == "not":
        _collect(body, found)
    elif kind == "trait":
        found.trait_keys.add(body["key"].split(".")[0])
        found.time_dependent |= body["op"] in RELATIVE_DATE_OPERATORS
    elif kind == "profile":
        found.profile_fields.add(body["field"])
        found.time_dependent |= body["op"] in RELATIVE_DATE_OPERATORS
    elif kind == "event":
        found.event_names.add(body["name"])
        # Events fall out of a window as time passes; a count over all time never drops.
        found.time_dependent |= "within_days" in body or any(
            condition["op"] in RELATIVE_DATE_OPERATORS for condition in body.get("where", [])
        )
    elif kind == "segment":
        found.segment_keys.add(body["key"])
    elif kind == "reachable":
        found.channels.add(body["channel"])
    elif kind == "score":
        found.score_kinds.add(body["model"])
    elif kind == "cluster":
        # Clusters change when they are retrained, like scores when customers are scored.
        found.score_kinds.add("clusters")
    elif kind == "consent":
        found.consent_topics.add(body["topic"])
        found.time_dependent = True
    elif kind == "rfm":
        found.uses_rfm = True
        found.time_dependent = True


def segment_references(rule: dict, path: str = "$") -> list[tuple[str, str]]:
    """The (JSON path, segment key) of every ``segment`` condition in a (valid) rule."""
    kind, body = next(iter(rule.items()))
    if kind in ("all", "any"):
        return [
            reference
            for index, child in enumerate(body)
            for reference in segment_references(child, f"{path}.{kind}[{index}]")
        ]
    if kind == "not":
        return segment_references(body, f"{path}.not")
    if kind == "segment":
        return [(f"{path}.segment.key", body["key"])]
    return []


def conditions_of_kind(rule: dict, kind: str, path: str = "$") -> list[tuple[str, dict]]:
    """The (JSON path, body) of every condition of ``kind`` in a (valid) rule."""
    rule_kind, body = next(iter(rule.items()))
    if rule_kind in ("all", "any"):
        return [
            found
            for index, child in enumerate(body)
            for found in conditions_of_kind(child, kind, f"{path}.{rule_kind}[{index}]")
        ]
    if rule_kind == "not":
        return conditions_of_kind(body, kind, f"{path}.not")
    if rule_kind == kind:
        return [(f"{path}.{kind}", body)]
    return []
