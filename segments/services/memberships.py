"""Who is in which segment: full recomputes in chunks, incremental re-evaluation for a few
customers, static lists. Only differences are written, and each entry and exit becomes a
``Segment Entered`` / ``Segment Exited`` event that journeys can start on.
"""

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q
from django.utils import timezone
from psycopg.types.numeric import Int8

from customers.models import Customer, Identity
from customers.services.handover import events_enqueue_hand_over
from segments.ml.rfm import rfm_refresh
from segments.models import Segment, SegmentMembership
from segments.rules import compile_rule, rule_dependencies
from segments.services.index import SegmentIndex, segment_index
from segments.services.prepared import fetch_prepared

logger = logging.getLogger(__name__)

RECOMPUTE_CHUNK = 20_000
REEVALUATE_CHUNK = 500
# Kinds whose members are selected by a rule (a model-based segment's is one score or
# cluster condition, chosen in the admin).
RULE_KINDS = (Segment.Kind.DYNAMIC, Segment.Kind.MODEL)
ENTERED = "Segment Entered"
EXITED = "Segment Exited"


@dataclass
class MembershipChanges:
    entered: int = 0
    exited: int = 0
    changed_customer_ids: set[int] = field(default_factory=set)

    def add(self, other: "MembershipChanges") -> None:
        self.entered += other.entered
        self.exited += other.exited
        self.changed_customer_ids |= other.changed_customer_ids


# -- writing differences ---------------------------------------------------------------------


def _apply(
    *, segment_id: int, segment_key: str, entering: Iterable[int], exiting: Iterable[int],
    now: dt.datetime,
) -> MembershipChanges:  # fmt: skip
    """Open stays for ``entering``, close the open stays of ``exiting``, and emit the events.

    Inserts skip customers already in (the partial unique index), updates touch only open
    stays: what is returned is what really changed, so a repeated or concurrent run emits
    nothing twice.
    """
    entering, exiting = sorted(entering), sorted(exiting)
    changes = MembershipChanges()
    events: list[tuple[int, str, str]] = []  # (customer, name, message id)
    with connection.cursor() as cursor:
        if entering:
            cursor.execute(
                """
                INSERT INTO segments_segmentmembership (segment_id, customer_id, entered_at)
                SELECT %s, customer_id, %s FROM unnest(%s::bigint[]) AS customer_id
                ON CONFLICT (segment_id, customer_id) WHERE exited_at IS NULL DO NOTHING
                RETURNING id, customer_id
                """,
                [segment_id, now, entering],
            )
            for membership_id, customer_id in cursor.fetchall():
                events.append((customer_id, ENTERED, f"segment-entered:{membership_id}"))
                changes.entered += 1
                changes.changed_customer_ids.add(customer_id)
        if exiting:
            cursor.execute(
                """
                UPDATE segments_segmentmembership SET exited_at = %s
                WHERE segment_id = %s AND customer_id = ANY(%s::bigint[]) AND exited_at IS NULL
                RETURNING id, customer_id
                """,
                [now, segment_id, exiting],
            )
            for membership_id, customer_id in cursor.fetchall():
                events.append((customer_id, EXITED, f"segment-exited:{membership_id}"))
                changes.exited += 1
                changes.changed_customer_ids.add(customer_id)
    if changes.entered or changes.exited:
        Segment.objects.filter(pk=segment_id).update(
            member_count=F("member_count") + changes.entered - changes.exited
        )
        segment_events_emit(segment_key=segment_key, events=events, now=now)
    return changes


def segment_events_emit(
    *, segment_key: str, events: Sequence[tuple[int, str, str]], now: dt.datetime
) -> list[int]:
    """Write ``Segment Entered`` / ``Segment Exited`` events and hand them to the reactors.

    Each message id is derived from the membership row (``segment-entered:<id>``), so an
    event is stored once however often the write is attempted.
    """
    if not events:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO customers_event
                (customer_id, type, name, properties, context, timestamp, received_at, message_id)
            SELECT e.customer_id, 'track', e.name, jsonb_build_object('segment_key', %s::text),
                   '{}'::jsonb, %s, %s, e.message_id
            FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS e(customer_id, name, message_id)
            ON CONFLICT (message_id) DO NOTHING
            RETURNING id
            """,
            [
                segment_key,
                now,
                timezone.now(),
                [customer_id for customer_id, _, _ in events],
                [name for _, name, _ in events],
                [message_id for _, _, message_id in events],
            ],
        )
        event_ids = [row[0] for row in cursor.fetchall()]
    events_enqueue_hand_over(event_ids=event_ids)
    return event_ids


def _current_members(segment_id: int, customer_filter: dict) -> set[int]:
    return set(
        SegmentMembership.objects.filter(
            segment_id=segment_id, exited_at=None, **customer_filter
        ).values_list("customer_id", flat=True)
    )


# -- full recompute --------------------------------------------------------------------------


def segment_recompute(
    *, segment: Segment, now: dt.datetime | None = None, chunk_size: int = RECOMPUTE_CHUNK
) -> MembershipChanges:
    """Recompute a dynamic segment over all customers; write only the differences.

    Who matches is one query over the whole population (the compiled rule, set-based),
    who is in is one read of the open stays; the differences are then written a chunk of
    customers per transaction, so no transaction holds many locks for long. Segments that
    refer to this one are then re-evaluated for the customers that changed.
    """
    if segment.kind not in RULE_KINDS:
        raise ValueError(
            f"segment {segment.key} is {segment.kind}: only dynamic and model-based "
            "segments recompute"
        )
    now = now or timezone.now()
    # The rules as they are now: a concurrent edit leaves the version behind, and the
    # schedule recomputes again.
    segment = Segment.objects.get(pk=segment.pk)
    condition = compile_rule(segment.rules, now=now, validate=False)
    wanted = set(Customer.objects.filter(condition).values_list("pk", flat=True).iterator(10_000))
    current = _current_members(segment.pk, {})
    entering, exiting = sorted(wanted - current), sorted(current - wanted)
    total = MembershipChanges()
    for start in range(0, max(len(entering), len(exiting)), chunk_size):
        # A stay opened or closed meanwhile by the per-event path is skipped by _apply.
        with transaction.atomic():
            total.add(
                _apply(
                    segment_id=segment.pk,
                    segment_key=segment.key,
                    entering=entering[start : start + chunk_size],
                    exiting=exiting[start : start + chunk_size],
                    now=now,
                )
            )
    # Erasures and merges delete stays by cascade; the exact count is taken here.
    Segment.objects.filter(pk=segment.pk).update(
        last_computed_at=now,
        member_count=len(current) + total.entered - total.exited,
        computed_version=segment.version,
    )
    if total.changed_customer_ids:
        dependents = segment_index().dependents.get(segment.key, set())
        if dependents:
            segments_reevaluate(
                customer_ids=sorted(total.changed_customer_ids), segment_ids=dependents, now=now
            )
    logger.info(
        "segment recomputed",
        extra={"segment_id": segment.pk, "entered": total.entered, "exited": total.exited},
    )
    return total


def segments_recompute_time_dependent(*, now: dt.datetime | None = None) -> int:
    """Recompute every dynamic segment whose rules change as time passes (relative dates,
    event windows, consent, RFM), and the dynamic and model-based segments whose rules
    changed since their last full recompute; return how many.

    RFM scores are refreshed first when a segment reads them.
    """
    now = now or timezone.now()
    segments = list(
        Segment.objects.filter(
            Q(kind=Segment.Kind.DYNAMIC, is_time_dependent=True)
            | Q(kind__in=RULE_KINDS) & ~Q(computed_version=F("version"))
        ).order_by("pk")
    )
    if any(rule_dependencies(segment.rules).uses_rfm for segment in segments):
        rfm_refresh(now=now)
    for segment in segments:
        segment_recompute(segment=segment, now=now)
    return len(segments)


# -- incremental re-evaluation ---------------------------------------------------------------


def segments_reevaluate(
    *,
    customer_ids: Sequence[int],
    segment_ids: Iterable[int],
    now: dt.datetime | None = None,
    index: SegmentIndex | None = None,
) -> MembershipChanges:
    """Re-evaluate the given segments for these customers, then the segments depending on
    those that changed.

    Segments are taken level by level (a segment after the ones its rule refers to); each
    level is one query that evaluates every segment of it for every customer, and reads
    their current stays, as columns. A dependent segment is evaluated only when a segment
    it refers to changed.
    """
    now = now or timezone.now()
    index = index or segment_index()
    total = MembershipChanges()
    customer_ids = sorted(set(customer_ids))
    direct = set(segment_ids)
    levels = index.with_dependents(direct)
    if not customer_ids or not levels:
        return total
    for start in range(0, len(customer_ids), REEVALUATE_CHUNK):
        chunk = customer_ids[start : start + REEVALUATE_CHUNK]
        changed_keys: set[str] = set()
        # Inside the caller's transaction (the reactor's hand-over) no savepoint is taken.
        with transaction.atomic(savepoint=False):
            for level in levels:
                due = [pk for pk in level if pk in direct or index.segments[pk].uses & changed_keys]
                if due:
                    changes, keys = _reevaluate_level(index, due, chunk, now)
                    total.add(changes)
                    changed_keys |= keys
    return total


def _level_queryset(index: SegmentIndex, level: list[int], now: dt.datetime, customers: list[int]):
    columns = {}
    for pk in level:
        columns[f"wanted_{pk}"] = ExpressionWrapper(
            compile_rule(index.segments[pk].rules, now=now, validate=False, few_customers=True),
            output_field=BooleanField(),
        )
        columns[f"current_{pk}"] = Exists(
            SegmentMembership.objects.filter(
                segment_id=pk, customer_id=OuterRef("pk"), exited_at__isnull=True
            )
        )
    return Customer.objects.filter(pk__in=customers).annotate(**columns).values("pk", *columns)


@dataclass(frozen=True)
class _CompiledLevel:
    """The SQL of one level's query, with where each parameter comes from: a constant, the
    clock (``now`` plus a fixed offset), or the list of customer ids."""

    sql: str
    sources: tuple  # ("constant", value) | ("now", offset) | ("customers", None)
    # The same for one customer (``id = %s``): every parameter a scalar, so that as a
    # prepared statement it gets one generic plan and is not planned again per event.
    single_customer_sql: str = ""

    def params(self, now: dt.datetime, customer_ids: list[int] | Int8) -> list:
        values = []
        for kind, value in self.sources:
            if kind == "constant":
                values.append(value)
            elif kind == "now":
                values.append(now + value)
            else:
                values.append(customer_ids)
        return values


_COMPILED_LEVELS: dict[tuple, _CompiledLevel | None] = {}
_COMPILED_LEVELS_LIMIT = 512
_PROBE = dt.timedelta(days=1, seconds=1)


def _compiled_level(
    index: SegmentIndex, level: list[int], now: dt.datetime
) -> _CompiledLevel | None:
    """The level's query compiled once per segment versions (the ORM's compilation costs
    more than the query itself on the per-event path), or None when it cannot be reused
    (a rule whose SQL depends on the date in another way, such as anniversaries)."""
    key = tuple((pk, index.segments[pk].version) for pk in level)
    if key in _COMPILED_LEVELS:
        return _COMPILED_LEVELS[key]
    # Compiled twice, at two moments and with two marker ids: what differs tells the
    # clock's and the customers' parameters apart from the constants.
    first_sql, first = _level_queryset(index, level, now, [-1]).query.sql_with_params()
    second_sql, second = _level_queryset(index, level, now + _PROBE, [-2]).query.sql_with_params()
    compiled = None
    ids_clause = '"customers_customer"."id" IN (%s)'
    if first_sql == second_sql and first_sql.count(ids_clause) == 1 and len(first) == len(second):
        sources = []
        for a, b in zip(first, second, strict=True):
            if a == b and not (isinstance(a, int) and a == -1):
                sources.append(("constant", a))
            elif isinstance(a, dt.datetime) and b - a == _PROBE:
                sources.append(("now", a - now))
            elif (a, b) == (-1, -2):
                sources.append(("customers", None))
            else:
                sources = None
                break
        if sources is not None:
            sql = first_sql.replace(ids_clause, '"customers_customer"."id" = ANY(%s)')
            single = first_sql.replace(ids_clause, '"customers_customer"."id" = %s')
            compiled = _CompiledLevel(sql=sql, sources=tuple(sources), single_customer_sql=single)
    if len(_COMPILED_LEVELS) >= _COMPILED_LEVELS_LIMIT:
        _COMPILED_LEVELS.clear()
    _COMPILED_LEVELS[key] = compiled
    return compiled


def _level_rows(index: SegmentIndex, level: list[int], customer_ids: list[int], now) -> list[dict]:
    compiled = _compiled_level(index, level, now)
    if compiled is None:
        return list(_level_queryset(index, level, now, customer_ids))
    if len(customer_ids) == 1:
        # One bigint type for every id, so one prepared statement per level.
        params = compiled.params(now, Int8(customer_ids[0]))
        names, rows = fetch_prepared(compiled.single_customer_sql, params)
        return [dict(zip(names, row, strict=True)) for row in rows]
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.params(now, customer_ids))
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _reevaluate_level(
    index: SegmentIndex, level: list[int], customer_ids: list[int], now: dt.datetime
) -> tuple[MembershipChanges, set[str]]:
    entering: dict[int, set[int]] = {pk: set() for pk in level}
    exiting: dict[int, set[int]] = {pk: set() for pk in level}
    for row in _level_rows(index, level, customer_ids, now):
        for pk in level:
            wanted, current = row[f"wanted_{pk}"], row[f"current_{pk}"]
            if wanted and not current:
                entering[pk].add(row["pk"])
            elif current and not wanted:
                exiting[pk].add(row["pk"])
    changes = MembershipChanges()
    changed_keys: set[str] = set()
    for pk in level:
        if entering[pk] or exiting[pk]:
            applied = _apply(
                segment_id=pk, segment_key=index.segments[pk].key,
                entering=entering[pk], exiting=exiting[pk], now=now,
            )  # fmt: skip
            if applied.entered or applied.exited:
                changed_keys.add(index.segments[pk].key)
            changes.add(applied)
    return changes, changed_keys


# -- static lists ----------------------------------------------------------------------------


@dataclass
class StaticListResult:
    changes: MembershipChanges
    matched: int
    unknown: list[str]


def segment_static_replace(
    *, segment: Segment, entries: Sequence[str], now: dt.datetime | None = None
) -> StaticListResult:
    """Make a static segment's members exactly the customers listed by external id or email.

    Entries that match no customer are returned, not stored: the list can be uploaded again.
    """
    if segment.kind != Segment.Kind.STATIC:
        raise ValueError(f"segment {segment.key} is {segment.kind}, not static")
    now = now or timezone.now()
    cleaned = [entry.strip() for entry in entries if entry.strip()]
    emails = {entry.lower() for entry in cleaned if "@" in entry}
    external_ids = {entry for entry in cleaned if "@" not in entry}
    by_id = dict(
        Identity.objects.filter(kind=Identity.Kind.USER_ID, value__in=external_ids).values_list(
            "value", "customer_id"
        )
    )
    by_email: dict[str, int] = {}
    for email, customer_id in Customer.objects.filter(email__in=emails).values_list("email", "pk"):
        by_email.setdefault(email, customer_id)
    wanted = set(by_id.values()) | set(by_email.values())
    unknown = [
        entry
        for entry in cleaned
        if (entry.lower() not in by_email if "@" in entry else entry not in by_id)
    ]
    with transaction.atomic():
        Segment.objects.select_for_update().filter(pk=segment.pk).first()
        current = _current_members(segment.pk, {})
        changes = _apply(
            segment_id=segment.pk, segment_key=segment.key,
            entering=wanted - current, exiting=current - wanted, now=now,
        )  # fmt: skip
        Segment.objects.filter(pk=segment.pk).update(last_computed_at=now)
        dependents = segment_index().dependents.get(segment.key, set())
        if dependents and changes.changed_customer_ids:
            segments_reevaluate(
                customer_ids=sorted(changes.changed_customer_ids), segment_ids=dependents, now=now
            )
    return StaticListResult(changes=changes, matched=len(wanted), unknown=unknown)


def segment_memberships_forget(*, customer_id: int) -> None:
    """Before a profile is deleted (merged away, erased), take its open stays off the counts.

    The stays themselves go with the profile; the surviving profile of a merge is
    re-evaluated when its alias event reaches the reactors.
    """
    segment_ids = list(
        SegmentMembership.objects.filter(customer_id=customer_id, exited_at=None).values_list(
            "segment_id", flat=True
        )
    )
    if segment_ids:
        Segment.objects.filter(pk__in=segment_ids, member_count__gt=0).update(
            member_count=F("member_count") - 1
        )


def segments_reevaluate_profile_change(
    *, customer_id: int, fields: Sequence[str], now: dt.datetime | None = None
) -> MembershipChanges:
    """Re-evaluate for one customer the segments a change of these profile fields can move."""
    segment_ids = segment_index().for_profile_change(fields=list(fields))
    if not segment_ids:
        return MembershipChanges()
    return segments_reevaluate(customer_ids=[customer_id], segment_ids=segment_ids, now=now)
