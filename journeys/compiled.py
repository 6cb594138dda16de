"""What the runner needs to know about a version's graph, computed once per version.

Versions are immutable, so the cache is keyed by version and never goes stale.
"""

from dataclasses import dataclass

from journeys.engine.graph import normalize_graph


@dataclass(frozen=True)
class CompiledVersion:
    graph: dict
    # Event names read by condition steps: the customer's recent ones are loaded as facts.
    condition_events: frozenset[str]
    uses_push: bool
    uses_segments: bool = False
    # Kinds of the segment-rule conditions the version's condition steps use ("score",
    # "consent", …): what the runner loads into each customer's snapshot.
    condition_kinds: frozenset[str] = frozenset()


_cache: dict[tuple, CompiledVersion] = {}
_CACHE_LIMIT = 1024


def compiled_by_id(version_ids) -> dict[int, CompiledVersion]:
    """Compiled versions by id; only versions not seen yet are read from the database."""
    from journeys.models import JourneyVersion

    found = {}
    missing = set()
    for version_id in set(version_ids):
        hit = _by_id.get(version_id)
        if hit is None:
            missing.add(version_id)
        else:
            found[version_id] = hit
    for version in JourneyVersion.objects.filter(pk__in=missing):
        found[version.pk] = _by_id[version.pk] = compiled(version)
    return found


# Keyed by id alone: PostgreSQL never hands out an id twice (sequences do not roll back,
# and the test suite does not reset them), and a version never changes.
_by_id: dict[int, CompiledVersion] = {}


def compiled(version) -> CompiledVersion:
    key = (version.pk, version.journey_id, version.number, version.published_at)
    found = _cache.get(key)
    if found is None:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        found = _cache[key] = compile_graph(version.graph)
    return found


def compile_graph(graph: dict) -> CompiledVersion:
    graph = normalize_graph(graph)
    events: set[str] = set()
    segments: set[str] = set()
    kinds: set[str] = set()
    uses_push = False
    for step in graph["steps"]:
        config = step["config"]
        if step["kind"] == "condition":
            _collect(config.get("rule"), events, segments, kinds)
        if step["kind"] == "send_best_channel":
            uses_push |= any(option.get("channel") == "push" for option in config["channels"])
    return CompiledVersion(graph, frozenset(events), uses_push, bool(segments), frozenset(kinds))


def _collect(rule, events: set[str], segments: set[str], kinds: set[str]) -> None:
    from journeys.segment_conditions import leaf_language

    if not isinstance(rule, dict):
        return
    for kind, body in rule.items():
        if kind in ("all", "any"):
            for child in body:
                _collect(child, events, segments, kinds)
        elif kind == "not":
            _collect(body, events, segments, kinds)
        else:
            if leaf_language(kind, body) == "segments":
                kinds.add(kind)
            if kind == "event" and isinstance(body, dict):
                events.add(body.get("name"))
            elif kind == "segment":
                segments.add(body.get("key") if isinstance(body, dict) else body)
