"""Which dynamic segments an event or a profile change can affect, cached by version.

The index is rebuilt only when a segment is created, changed or deleted: its version is
read from the segments table in one small aggregate, and the compiled-rule cache is keyed by
each segment's own version.
"""

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from segments.models import Segment
from segments.rules import rule_dependencies
from segments.services.prepared import fetch_prepared

# Fields of the profile every incoming event may change: ingest moves last_seen (and
# first_seen) and takes timezone and locale from any message's context.
FIELDS_ANY_EVENT_CHANGES = frozenset({"first_seen", "last_seen", "timezone", "locale"})


@dataclass(frozen=True)
class IndexedSegment:
    id: int
    key: str
    version: int
    rules: dict
    # Keys of the segments this one's rules refer to.
    uses: frozenset[str]


@dataclass
class SegmentIndex:
    version: tuple
    segments: dict[int, IndexedSegment] = field(default_factory=dict)
    by_event_name: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_trait_key: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_profile_field: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    by_channel: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    # segment key -> ids of the segments whose rules refer to it
    dependents: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def for_event(self, *, name: str, event_type: str, property_keys: list[str],
                  has_device: bool) -> set[int]:  # fmt: skip
        """The segments an incoming event can change for its customer."""
        if event_type == "alias":
            # A merge moves events and traits: anything may have changed.
            return set(self.segments)
        found = set(self.by_event_name.get(name, ()))
        for profile_field in FIELDS_ANY_EVENT_CHANGES:
            found |= self.by_profile_field.get(profile_field, set())
        if event_type == "identify":
            for key in property_keys:
                found |= self.by_trait_key.get(key, set())
            for profile_field in ("email", "phone"):
                found |= self.by_profile_field.get(profile_field, set())
            found |= self.by_channel.get("email", set()) | self.by_channel.get("sms", set())
        if has_device:
            found |= self.by_channel.get("push", set())
        return found

    def for_profile_change(self, *, fields: list[str]) -> set[int]:
        found: set[int] = set()
        for profile_field in fields:
            if profile_field == "traits":
                for ids in self.by_trait_key.values():
                    found |= ids
            else:
                found |= self.by_profile_field.get(profile_field, set())
        if "email" in fields:
            found |= self.by_channel.get("email", set())
        if "phone" in fields:
            found |= self.by_channel.get("sms", set())
        return found

    def with_dependents(self, segment_ids: set[int]) -> list[list[int]]:
        """The segments and every segment depending on them, in levels: each level only
        refers to segments of earlier levels (or to segments outside the set)."""
        closure = set(segment_ids)
        stack = list(segment_ids)
        while stack:
            segment = self.segments.get(stack.pop())
            if segment is None:
                continue
            for dependent in self.dependents.get(segment.key, ()):
                if dependent not in closure:
                    closure.add(dependent)
                    stack.append(dependent)
        closure &= set(self.segments)
        keys = {self.segments[pk].key: pk for pk in closure}
        levels: list[list[int]] = []
        placed: set[int] = set()
        while len(placed) < len(closure):
            level = sorted(
                pk
                for pk in closure - placed
                if all(
                    keys.get(used) in placed or used not in keys for used in self.segments[pk].uses
                )
            )
            if not level:  # a cycle slipped past validation: evaluate the rest together
                level = sorted(closure - placed)
            levels.append(level)
            placed |= set(level)
        return levels


_lock = threading.Lock()
_cached: SegmentIndex | None = None


def _current_version() -> tuple:
    # Raw SQL, prepared: this runs for every batch of events, and the ORM's aggregate (or
    # planning it anew) costs more than the query costs to run.
    _, rows = fetch_prepared(
        "SELECT count(*), sum(version), max(updated_at), max(id) FROM segments_segment "
        "WHERE kind = %s",
        [Segment.Kind.DYNAMIC.value],
    )
    return tuple(rows[0])


def segment_index() -> SegmentIndex:
    """The dependency index of the dynamic segments, rebuilt when any of them changed."""
    global _cached
    version = _current_version()
    cached = _cached
    if cached is not None and cached.version == version:
        return cached
    index = SegmentIndex(version=version)
    for pk, key, segment_version, rules in Segment.objects.filter(
        kind=Segment.Kind.DYNAMIC
    ).values_list("pk", "key", "version", "rules"):
        dependencies = rule_dependencies(rules)
        index.segments[pk] = IndexedSegment(
            id=pk, key=key, version=segment_version, rules=rules,
            uses=frozenset(dependencies.segment_keys),
        )  # fmt: skip
        for name in dependencies.event_names:
            index.by_event_name[name].add(pk)
        for trait_key in dependencies.trait_keys:
            index.by_trait_key[trait_key].add(pk)
        for profile_field in dependencies.profile_fields:
            index.by_profile_field[profile_field].add(pk)
        for channel in dependencies.channels:
            index.by_channel[channel].add(pk)
        for used in dependencies.segment_keys:
            index.dependents[used].add(pk)
    with _lock:
        _cached = index
    return index
