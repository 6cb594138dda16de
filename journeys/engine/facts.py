"""What the pure engine may look at besides the graph and the enrolment state.

The runner loads these before calling ``advance`` (the engine itself does no I/O).
"""

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventFact:
    name: str
    timestamp: dt.datetime
    properties: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CustomerFacts:
    traits: dict = field(default_factory=dict)
    events: tuple[EventFact, ...] = ()
    # Channels the customer can be reached on and has not refused; ``None`` means unknown,
    # and the first channel of a send-on-best-channel step is taken (the consent gate
    # still decides at send time).
    reachable_channels: frozenset[str] | None = None
    timezone: str = ""
    # Keys of the segments the customer is in now (loaded when a condition asks).
    segment_keys: frozenset[str] = frozenset()
    # segments' ``CustomerSnapshot`` (profile fields, scores, cluster, consent, RFM…), loaded
    # by the runner only for versions whose conditions use the segment rule language.
    snapshot: Any = None
