"""The consent decision: a pure function of a snapshot, no database, no clock.

Every send path asks ``decide`` right before the provider (through the loaders in
``consent.services.gate``). The decision is a small value the sending app stores on the
message; ``explain`` turns it into a sentence for the admin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ALLOWED = "allowed"
NO_CONSENT = "no_consent"
WITHDRAWN = "withdrawn"
PENDING_CONFIRMATION = "pending_confirmation"
SUPPRESSED = "suppressed"
UNREACHABLE = "unreachable"
QUIET_HOURS = "quiet_hours"
FREQUENCY_CAPPED = "frequency_capped"
ERASED = "erased"
UNKNOWN_TOPIC = "unknown_topic"

# Recorded states (the ledger's actions).
GRANT = "grant"
WITHDRAW = "withdraw"
PENDING = "pending"


@dataclass(frozen=True, slots=True)
class TopicRule:
    key: str
    channels: frozenset[str]
    opt_out_default: bool = False
    double_opt_in: bool = False
    is_transactional: bool = False


@dataclass(frozen=True, slots=True)
class RecordedState:
    """The latest ledger row for one (channel, topic) or (channel, all topics)."""

    action: str
    occurred_at: dt.datetime
    event_id: int = 0

    def order(self) -> tuple[dt.datetime, int]:
        return (self.occurred_at, self.event_id)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the gate needs to know about one customer for one channel."""

    customer_id: int
    addresses: tuple[str, ...] = ()
    suppressed_addresses: frozenset[str] = frozenset()
    topic_state: RecordedState | None = None
    channel_state: RecordedState | None = None
    timezone: str = ""
    erased: bool = False
    # Send times of non-transactional messages in the longest cap window, per channel.
    recent_sends: dict[str, tuple[dt.datetime, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GateSettings:
    quiet_hours: dict[str, tuple[dt.time, dt.time]] = field(default_factory=dict)
    frequency_caps: dict[str, tuple[int, int]] = field(default_factory=dict)
    default_timezone: str = "UTC"

    @classmethod
    def from_settings(cls, settings) -> GateSettings:
        return cls(
            quiet_hours={
                channel: (dt.time.fromisoformat(start), dt.time.fromisoformat(end))
                for channel, (start, end) in settings.CONSENT_QUIET_HOURS.items()
            },
            frequency_caps=dict(settings.CONSENT_FREQUENCY_CAPS),
            default_timezone=settings.JOURNEYLINE_DEFAULT_TIMEZONE,
        )

    def longest_cap_window(self) -> int:
        return max((window for _, window in self.frequency_caps.values()), default=0)


@dataclass(frozen=True, slots=True)
class Decision:
    reason: str
    retry_at: dt.datetime | None = None
    detail: str = ""

    @property
    def allowed(self) -> bool:
        return self.reason == ALLOWED

    def as_dict(self) -> dict:
        """The stored form (JSON): what the sending app keeps on the message."""
        return {
            "allowed": self.allowed,
            "reason": self.reason,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
            "detail": self.detail,
        }


_ALLOWED = Decision(ALLOWED)


def effective_status(
    *, topic: TopicRule, topic_state: RecordedState | None, channel_state: RecordedState | None
) -> str:
    """``allowed``, ``no_consent``, ``withdrawn`` or ``pending_confirmation`` from the
    recorded states alone.

    A channel-wide withdrawal ("unsubscribe from everything", STOP) silences every topic
    unless the customer granted that topic again after it; a channel-wide grant (START)
    only lifts that switch, each topic's own state still applies.
    """
    if topic.is_transactional:
        return ALLOWED
    if channel_state is not None and channel_state.action == WITHDRAW:
        newer_grant = (
            topic_state is not None
            and topic_state.action == GRANT
            and topic_state.order() > channel_state.order()
        )
        if not newer_grant:
            return WITHDRAWN
    if topic_state is None:
        return ALLOWED if topic.opt_out_default else NO_CONSENT
    if topic_state.action == GRANT:
        return ALLOWED
    if topic_state.action == PENDING:
        return PENDING_CONFIRMATION
    return WITHDRAWN


def _zone(name: str, default: str) -> ZoneInfo:
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_hours_end(
    *, now: dt.datetime, window: tuple[dt.time, dt.time], zone: ZoneInfo
) -> dt.datetime | None:
    """When the quiet window that ``now`` falls in ends (aware, UTC), or None outside it.

    The window is local wall-clock time and may wrap midnight. The end is built as a local
    time on the right calendar day and only then converted, so DST changes move it with
    the clock; an end that falls in a spring-forward gap resolves to just after the gap.
    """
    start, end = window
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if start < end:
        if not (start <= wall < end):
            return None
        day = local.date()
    elif wall >= start:
        day = local.date() + dt.timedelta(days=1)
    elif wall < end:
        day = local.date()
    else:
        return None
    retry = dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.UTC)
    if (
        retry > now
        and not _in_window(retry, window, zone)
        and (retry - _MINUTE <= now or _in_window(retry - _MINUTE, window, zone))
    ):
        return retry
    # The end fell in a DST gap or a repeated hour: walk the clock to the first minute
    # outside the window (rare, and at most two days of minutes).
    probe = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    for _ in range(_MAX_WALK_MINUTES):
        probe += _MINUTE
        if not _in_window(probe, window, zone):
            return probe
    return probe


_MINUTE = dt.timedelta(minutes=1)
_MAX_WALK_MINUTES = 49 * 60


def _in_window(moment: dt.datetime, window: tuple[dt.time, dt.time], zone: ZoneInfo) -> bool:
    start, end = window
    wall = moment.astimezone(zone).time().replace(tzinfo=None)
    return start <= wall < end if start < end else (wall >= start or wall < end)


def _capped(
    *, sends: tuple[dt.datetime, ...], cap: tuple[int, int], now: dt.datetime
) -> dt.datetime | None:
    """The time a slot frees up when ``cap`` is reached, else None."""
    limit, window = cap
    if len(sends) < limit:
        return None
    since = now - dt.timedelta(seconds=window)
    inside = [sent_at for sent_at in sends if since < sent_at <= now]
    if len(inside) < limit:
        return None
    inside.sort()
    # The oldest send that must leave the window for one more to fit.
    return inside[len(inside) - limit] + dt.timedelta(seconds=window)


def decide(
    *,
    snapshot: Snapshot,
    channel: str,
    topic: TopicRule | None,
    now: dt.datetime,
    settings: GateSettings,
) -> Decision:
    """Allowed, or the first reason not to send now (see the module docstring)."""
    if snapshot.erased:
        return Decision(ERASED)
    if topic is None:
        return Decision(UNKNOWN_TOPIC, detail="the topic does not exist")
    if channel not in topic.channels:
        return Decision(NO_CONSENT, detail=f"topic {topic.key} is not sent on {channel}")
    if not snapshot.addresses:
        return Decision(UNREACHABLE, detail=f"no {channel} address")
    if all(address in snapshot.suppressed_addresses for address in snapshot.addresses):
        return Decision(SUPPRESSED, detail=f"every {channel} address is suppressed")
    status = effective_status(
        topic=topic, topic_state=snapshot.topic_state, channel_state=snapshot.channel_state
    )
    if status != ALLOWED:
        return Decision(status)
    if topic.is_transactional:
        return _ALLOWED

    window = settings.quiet_hours.get(channel)
    if window is not None:
        zone = _zone(snapshot.timezone, settings.default_timezone)
        retry_at = quiet_hours_end(now=now, window=window, zone=zone)
        if retry_at is not None:
            return Decision(QUIET_HOURS, retry_at=retry_at, detail=str(zone))

    for scope, cap in settings.frequency_caps.items():
        if scope == "all":
            sends = tuple(t for times in snapshot.recent_sends.values() for t in times)
        elif scope == channel:
            sends = snapshot.recent_sends.get(channel, ())
        else:
            continue
        retry_at = _capped(sends=sends, cap=cap, now=now)
        if retry_at is not None:
            return Decision(
                FREQUENCY_CAPPED,
                retry_at=retry_at,
                detail=f"{cap[0]} per {cap[1]}s on {'all channels' if scope == 'all' else scope}",
            )
    return _ALLOWED


_EXPLANATIONS = {
    ALLOWED: "Allowed: the customer has consented (or the topic needs no consent), the "
    "address is reachable and not suppressed, and no quiet hours or frequency cap applied.",
    NO_CONSENT: "Refused: the topic is opt-in and the customer never agreed to it.",
    WITHDRAWN: "Refused: the customer withdrew consent for this topic or this channel.",
    PENDING_CONFIRMATION: "Refused: the customer subscribed but has not yet confirmed "
    "(double opt-in).",
    SUPPRESSED: "Refused: the address is on the suppression list (bounce, complaint, "
    "manual or erasure).",
    UNREACHABLE: "Refused: the customer has no usable address on this channel.",
    QUIET_HOURS: "Deferred: it is quiet hours in the customer's time zone.",
    FREQUENCY_CAPPED: "Deferred: the customer already received the most messages allowed "
    "in the rolling window.",
    ERASED: "Refused: the customer's personal data was erased.",
    UNKNOWN_TOPIC: "Refused: the message's topic does not exist.",
}


def explain(decision: dict | Decision) -> str:
    """A sentence for a stored decision: why the message was allowed or refused."""
    if isinstance(decision, Decision):
        decision = decision.as_dict()
    reason = decision.get("reason", "")
    text = _EXPLANATIONS.get(reason, f"Unknown decision {reason!r}.")
    if decision.get("detail"):
        text += f" ({decision['detail']})"
    if decision.get("retry_at"):
        text += f" Retry at {decision['retry_at']}."
    return text
