"""Broadcasts: start, send, pause, resume and cancel a campaign; its tick; the A/B winner.

Sending a campaign writes every recipient's message (or holdout row) into the outbox
(``broadcast_snapshot``: in chunks for a run sent now, each dispatched on commit while
the next is written); throttled and local-time ones wait in the table for the dispatch
tick.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, CampaignStatusChange, Message, MessageStatus
from campaigns.selectors_broadcasts import (
    REST,
    WinnerWait,
    campaign_results,
    campaign_winner_wait,
    winner_choose,
)
from campaigns.services.broadcast_snapshot import (
    DUE_NOW,
    HOLDOUT,
    WAITING_FOR_WINNER,
    SnapshotChunk,
    due_sql,
    run_counts,
    snapshot_write,
)
from campaigns.services.outbox import (
    messages_cancel,
    messages_dispatch_on_commit,
    status_changes_record,
    sweep_after,
    task_publish,
)
from consent.services.topics import topic_get

logger = logging.getLogger(__name__)

C = Campaign.Status

_CAMPAIGN_TRANSITIONS = {
    C.DRAFT: {C.SCHEDULED, C.SENDING, C.CANCELLED},
    C.SCHEDULED: {C.SENDING, C.SCHEDULED, C.CANCELLED, C.DRAFT},
    C.SENDING: {C.PAUSED, C.SENT, C.CANCELLED, C.SCHEDULED},
    C.PAUSED: {C.SENDING, C.CANCELLED},
    C.SENT: set(),
    C.CANCELLED: set(),
}


class CampaignError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def campaign_transition(
    *,
    campaign_id: int,
    to_status: str,
    actor: str,
    reason: str = "",
    data: Mapping[str, Any] | None = None,
    fields: Mapping[str, Any] | None = None,
) -> bool:
    """Compare-and-swap the campaign's status, with a history row; False if not allowed."""
    current = Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).first()
    if current is None or to_status not in _CAMPAIGN_TRANSITIONS[current]:
        return False
    with transaction.atomic():
        updated = Campaign.objects.filter(pk=campaign_id, status=current).update(
            status=to_status, updated_at=timezone.now(), **(fields or {})
        )
        if updated:
            CampaignStatusChange.objects.create(
                campaign_id=campaign_id,
                from_status=current,
                to_status=to_status,
                actor=actor,
                reason=reason,
                data=dict(data or {}),
            )
    return bool(updated)


def campaign_check(campaign: Campaign) -> list[tuple[str, str]]:
    """What stops this campaign from being sent, as (field, reason) pairs."""
    problems: list[tuple[str, str]] = []
    variants = list(campaign.variants.select_related("template_version"))
    if not variants:
        problems.append(("variants", "add at least one variant"))
    for variant in variants:
        version = variant.template_version
        if version.template_id != campaign.template_id:
            problems.append(("variants", f"variant {variant.key} uses another template"))
        if not version.is_published:
            problems.append(("variants", f"variant {variant.key} uses an unpublished version"))
        if variant.weight <= 0:
            problems.append(("variants", f"variant {variant.key} needs a weight above 0"))
        if variant.key in (HOLDOUT, REST):
            problems.append(("variants", f"{variant.key!r} is reserved"))
    if campaign.holdout_percent > 50:
        problems.append(("holdout_percent", "at most 50"))
    problems.extend(_test_share_problems(campaign, variant_count=len(variants)))
    topic = topic_get(key=campaign.topic_key)
    if topic is None:
        problems.append(("topic_key", "no such topic"))
    elif campaign.template.channel not in topic.channels:
        problems.append(("topic_key", f"the topic is not sent on {campaign.template.channel}"))
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at is None:
        problems.append(("send_at", "required for 'at a time'"))
    if campaign.schedule == Campaign.Schedule.LOCAL_TIME and campaign.local_time is None:
        problems.append(("local_time", "required for 'at a local time'"))
    if campaign.schedule == Campaign.Schedule.RECURRING and len(campaign.cron.split()) != 5:
        problems.append(("cron", "five fields: minute hour day-of-month month day-of-week"))
    if campaign.throttle_per_minute == 0:
        problems.append(("throttle_per_minute", "leave empty for no throttle, or above 0"))
    return problems


def _test_share_problems(campaign: Campaign, *, variant_count: int) -> list[tuple[str, str]]:
    if not 1 <= campaign.test_percent <= 100:
        return [("test_percent", "between 1 and 100")]
    if campaign.test_percent == 100:
        return []
    if not campaign.pick_winner:
        return [("test_percent", "below 100 only with an automatic winner to send the rest")]
    if variant_count < 2:
        return [("test_percent", "a test needs at least two variants")]
    if campaign.schedule == Campaign.Schedule.RECURRING:
        return [("test_percent", "a recurring campaign tests on everyone: use 100")]
    return []


def campaign_start(
    *,
    campaign_id: int,
    actor: str,
    now: dt.datetime | None = None,
    rest_in_background: bool = False,
) -> str:
    """Start (or schedule) a draft campaign; returns its new status. With
    ``rest_in_background`` (the admin) a big audience's first chunk is written here and the
    rest by a task, so the request does not wait for it."""
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("template").get(pk=campaign_id)
    if campaign.status != C.DRAFT:
        raise CampaignError("status", f"only a draft can be started, this one is {campaign.status}")
    problems = campaign_check(campaign)
    if problems:
        field, message = problems[0]
        raise CampaignError(field, message)
    if campaign.schedule == Campaign.Schedule.RECURRING:
        with transaction.atomic():
            _periodic_task_save(campaign)
            campaign_transition(campaign_id=campaign.pk, to_status=C.SCHEDULED, actor=actor)
        return C.SCHEDULED
    if campaign.schedule == Campaign.Schedule.AT and campaign.send_at > now:
        campaign_transition(campaign_id=campaign.pk, to_status=C.SCHEDULED, actor=actor)
        return C.SCHEDULED
    campaign_send(
        campaign_id=campaign.pk, actor=actor, now=now, rest_in_background=rest_in_background
    )
    return C.SENDING


def _periodic_task_save(campaign: Campaign) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    minute, hour, day_of_month, month, day_of_week = campaign.cron.split()
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month,
        day_of_week=day_of_week,
        timezone="UTC",
    )
    PeriodicTask.objects.update_or_create(
        name=f"campaign {campaign.pk}",
        defaults={
            "task": "campaigns.campaign_send",
            "crontab": schedule,
            "args": f"[{campaign.pk}]",
            "enabled": True,
        },
    )


def _periodic_task_delete(campaign_id: int) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=f"campaign {campaign_id}").delete()


@dataclass(frozen=True)
class SendReport:
    run: int
    queued: int
    holdout: int
    rest: int = 0
    # False when the rest of the audience is left to a task (the counts are the first chunk's).
    audience_written: bool = True


def campaign_send(
    *,
    campaign_id: int,
    actor: str,
    now: dt.datetime | None = None,
    rest_in_background: bool = False,
) -> SendReport:
    """Snapshot the audience into messages (one run) and dispatch them.

    A run sent now is written a chunk at a time (see ``broadcast_snapshot``), each chunk
    dispatched once committed; this returns when the whole audience is written, or, with
    ``rest_in_background``, once the first chunk is, the rest handed to a task."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template")
            .get(pk=campaign_id)
        )
        if campaign.status not in (C.DRAFT, C.SCHEDULED):
            raise CampaignError("status", f"a {campaign.status} campaign cannot be sent")
        if campaign.snapshot_after is not None:
            raise CampaignError("status", "the last run's audience is still being written")
        problems = campaign_check(campaign)
        if problems:
            raise CampaignError(*problems[0])
        run = campaign.runs + 1
        due = due_sql(campaign)
        limit = settings.CAMPAIGN_SNAPSHOT_CHUNK if due == DUE_NOW else None
        chunk = snapshot_write(
            campaign=campaign,
            topic=topic_get(key=campaign.topic_key),
            run=run,
            now=now,
            actor=actor,
            limit=limit,
        )
        more = limit is not None and chunk.size == limit
        recurring = campaign.schedule == Campaign.Schedule.RECURRING
        if more:
            reason = f"run {run}: writing the audience, {limit:,} customers at a time"
            data: dict[str, Any] = {"run": run, "chunk": limit}
        else:
            reason, data = _run_summary(run, len(chunk.queued), chunk.holdout, chunk.rest)
        campaign_transition(
            campaign_id=campaign.pk,
            to_status=C.SCHEDULED if recurring else C.SENDING,
            actor=actor,
            reason=reason,
            data=data,
            fields={
                "runs": run,
                "started_at": campaign.started_at or now,
                "snapshot_after": chunk.last if more else None,
            },
        )
        if due == DUE_NOW:
            messages_dispatch_on_commit(message_ids=chunk.queued)
        if more and rest_in_background:
            transaction.on_commit(lambda: _snapshot_publish(campaign_id))
    report = SendReport(
        run=run,
        queued=len(chunk.queued),
        holdout=chunk.holdout,
        rest=chunk.rest,
        audience_written=not more,
    )
    while more and not rest_in_background:
        written = campaign_snapshot_continue(campaign_id=campaign_id, actor=actor)
        if written is None:
            break
        more = written.size == limit
        report = SendReport(
            audience_written=not more,
            run=run,
            queued=report.queued + len(written.queued),
            holdout=report.holdout + written.holdout,
            rest=report.rest + written.rest,
        )
    logger.info(
        "campaign sent", extra={"campaign_id": campaign_id, "run": run, "queued": report.queued}
    )
    return report


def _snapshot_publish(campaign_id: int) -> None:
    from campaigns.tasks import campaign_snapshot_task

    task_publish(
        campaign_snapshot_task,
        [campaign_id],
        failure="could not hand the rest of the audience to a task; the tick will take it over",
        extra={"campaign_id": campaign_id},
    )


def campaign_snapshot_finish(
    *, campaign_id: int, actor: str, now: dt.datetime | None = None
) -> int:
    """Write what is left of a run's audience, chunk after chunk; returns the chunks."""
    chunks = 0
    while campaign_snapshot_continue(campaign_id=campaign_id, actor=actor, now=now) is not None:
        chunks += 1
    return chunks


def _run_summary(
    run: int, queued: int, holdout: int, rest: int, *, written: str = ""
) -> tuple[str, dict[str, int]]:
    reason = f"run {run}: {written}{queued} messages, {holdout} held out" + (
        f", {rest} waiting for the A/B test winner" if rest else ""
    )
    return reason, {"run": run, "queued": queued, "holdout": holdout, "rest": rest}


def campaign_snapshot_continue(
    *, campaign_id: int, actor: str, now: dt.datetime | None = None
) -> SnapshotChunk | None:
    """Write the next chunk of a run's audience; None when there is nothing to write.

    Under the campaign's row lock, so two callers (the sender, and the tick taking over
    a snapshot whose sender stopped) write each chunk once. A paused campaign's chunk is
    written paused; a cancelled campaign's audience is not written further."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("template")
            .filter(pk=campaign_id, snapshot_after__isnull=False)
            .first()
        )
        if campaign is None:
            return None
        if campaign.status == C.CANCELLED:
            Campaign.objects.filter(pk=campaign_id).update(snapshot_after=None, updated_at=now)
            return None
        limit = settings.CAMPAIGN_SNAPSHOT_CHUNK
        chunk = snapshot_write(
            campaign=campaign,
            topic=topic_get(key=campaign.topic_key),
            run=campaign.runs,
            now=now,
            actor=actor,
            after=campaign.snapshot_after,
            limit=limit,
        )
        more = chunk.size == limit
        Campaign.objects.filter(pk=campaign_id).update(
            snapshot_after=chunk.last if more else None, updated_at=now
        )
        if campaign.status == C.PAUSED:
            _messages_pause(campaign_id=campaign_id, actor=actor)
        else:
            messages_dispatch_on_commit(message_ids=chunk.queued)
        if not more:
            counts = run_counts(campaign_id=campaign_id, run=campaign.runs)
            reason, data = _run_summary(campaign.runs, **counts, written="audience written, ")
            CampaignStatusChange.objects.create(
                campaign=campaign,
                from_status=campaign.status,
                to_status=campaign.status,
                actor=actor,
                reason=reason,
                data=data,
            )
    return chunk


def campaign_pause(*, campaign_id: int, actor: str) -> int:
    """Stop sending: queued messages wait (deferred, no due time) until resumed."""
    with transaction.atomic():
        if not campaign_transition(campaign_id=campaign_id, to_status=C.PAUSED, actor=actor):
            raise CampaignError("status", "only a sending campaign can be paused")
        return _messages_pause(campaign_id=campaign_id, actor=actor)


def _messages_pause(*, campaign_id: int, actor: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE campaigns_message SET status = 'deferred', next_attempt_at = NULL, "
            "failure_reason = 'campaign paused', updated_at = now() "
            "WHERE campaign_id = %s AND status = 'queued' RETURNING id",
            [campaign_id],
        )
        ids = [row[0] for row in cursor.fetchall()]
    status_changes_record(
        changes=[(i, MessageStatus.QUEUED, MessageStatus.DEFERRED, "paused", {}) for i in ids],
        actor=actor,
    )
    return len(ids)


def campaign_resume(*, campaign_id: int, actor: str, now: dt.datetime | None = None) -> int:
    """Carry on: paused messages are due again (spread by the throttle, if any)."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.get(pk=campaign_id)
        if not campaign_transition(campaign_id=campaign_id, to_status=C.SENDING, actor=actor):
            raise CampaignError("status", "only a paused campaign can be resumed")
        spread = campaign.throttle_per_minute or 0
        with connection.cursor() as cursor:
            cursor.execute(
                """
                WITH paused AS (
                    SELECT id, row_number() OVER (ORDER BY id) AS position
                    FROM campaigns_message
                    WHERE campaign_id = %s AND status = 'deferred'
                      AND failure_reason = 'campaign paused'
                )
                UPDATE campaigns_message m SET status = 'queued', failure_reason = '',
                    updated_at = %s,
                    next_attempt_at = CASE WHEN %s > 0
                        THEN %s::timestamptz + make_interval(
                            secs => (paused.position - 1) * 60.0 / greatest(%s, 1))
                        ELSE %s::timestamptz END
                FROM paused WHERE m.id = paused.id RETURNING m.id
                """,
                [campaign_id, now, spread, now, spread, now],
            )
            ids = [row[0] for row in cursor.fetchall()]
        status_changes_record(
            changes=[(i, MessageStatus.DEFERRED, MessageStatus.QUEUED, "resumed", {}) for i in ids],
            actor=actor,
        )
        if not spread:
            messages_dispatch_on_commit(message_ids=ids)
    return len(ids)


def campaign_cancel(*, campaign_id: int, actor: str) -> int:
    """Stop for good: messages not yet sent are skipped; a recurring schedule is removed."""
    with transaction.atomic():
        if not campaign_transition(campaign_id=campaign_id, to_status=C.CANCELLED, actor=actor):
            raise CampaignError("status", "this campaign cannot be cancelled")
        _periodic_task_delete(campaign_id)
        return messages_cancel(
            message_ids=_unsent_ids(campaign_id), actor=actor, reason="campaign cancelled"
        )


def _unsent_ids(campaign_id: int) -> list[int]:
    return list(
        Message.objects.filter(
            campaign_id=campaign_id, status__in=[MessageStatus.QUEUED, MessageStatus.DEFERRED]
        ).values_list("pk", flat=True)
    )


@dataclass
class CampaignTickReport:
    started: int = 0
    finished: int = 0
    winners: int = 0
    snapshots_resumed: int = 0


# A run's audience not written further for this long lost its sender: the tick takes over.
SNAPSHOT_STALLED = dt.timedelta(minutes=2)


def campaigns_tick(*, now: dt.datetime | None = None) -> CampaignTickReport:
    """Start campaigns scheduled for now, finish writing audiences whose sender stopped,
    mark finished ones sent, name due winners."""
    now = now or timezone.now()
    report = CampaignTickReport()
    due = Campaign.objects.filter(
        status=C.SCHEDULED, schedule=Campaign.Schedule.AT, send_at__lte=now
    ).values_list("pk", flat=True)
    for campaign_id in due:
        try:
            campaign_send(campaign_id=campaign_id, actor="schedule", now=now)
            report.started += 1
        except CampaignError as error:
            logger.warning(
                "scheduled campaign not sent: %s", error, extra={"campaign_id": campaign_id}
            )
    stalled = Campaign.objects.filter(
        snapshot_after__isnull=False, updated_at__lt=now - SNAPSHOT_STALLED
    ).values_list("pk", flat=True)
    for campaign_id in stalled:
        report.snapshots_resumed += 1
        campaign_snapshot_finish(campaign_id=campaign_id, actor="campaigns tick", now=now)
    for campaign in Campaign.objects.filter(status=C.SENDING, snapshot_after__isnull=True):
        unsent = campaign_has_unsent(campaign_id=campaign.pk)
        if not unsent and campaign_transition(
            campaign_id=campaign.pk,
            to_status=C.SENT,
            actor="dispatch tick",
            fields={"finished_at": now},
        ):
            report.finished += 1
    # The window counted from the start is the earliest a winner can be due: only those
    # campaigns are asked whether their test messages are all out (campaign_pick_winner).
    window_over = [
        campaign
        for campaign in Campaign.objects.filter(
            pick_winner=True, winner="", started_at__isnull=False
        ).exclude(status=C.PAUSED)
        if campaign.started_at + dt.timedelta(hours=campaign.test_window_hours) <= now
    ]
    for campaign in window_over:
        if campaign_pick_winner(campaign_id=campaign.pk, actor="campaigns tick", now=now):
            report.winners += 1
    return report


@dataclass(frozen=True)
class WinnerReport:
    winner: str
    why: str
    rest: int


_RELEASE_REST_SQL = """
WITH a AS (
    SELECT m.id,
           CASE WHEN c.timezone IN (SELECT name FROM pg_timezone_names) THEN c.timezone
                ELSE %(default_zone)s END AS zone,
           row_number() OVER (ORDER BY m.id) AS position
    FROM campaigns_message m JOIN customers_customer c ON c.id = m.customer_id
    WHERE m.campaign_id = %(campaign)s AND m.variant = 'rest' AND m.status = 'deferred'
      AND m.failure_reason = %(waiting)s
)
UPDATE campaigns_message m
SET status = 'queued', template_version_id = %(version)s, failure_reason = '',
    next_attempt_at = {due}, updated_at = %(now)s
FROM a WHERE m.id = a.id AND m.status = 'deferred'
RETURNING m.id
"""


def campaign_pick_winner(
    *, campaign_id: int, actor: str, now: dt.datetime | None = None
) -> WinnerReport | None:
    """Name the A/B test's winner and send it to the rest of the audience; once.

    Only once the test is over (selectors_broadcasts.winner_wait): every test message sent
    and the window passed since the last one, or the cap reached. The campaign row is
    locked and the winner written only while still empty, so two ticks at once pick (and
    release the rest) once: the second finds a winner and does nothing. The rest's
    messages switch to the winner's version and are due now (spread by the throttle, or at
    the local time for a local-time campaign). None if there was nothing to do yet.
    """
    now = now or timezone.now()
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, pick_winner=True, winner="")
            .exclude(status=C.PAUSED)
            .first()
        )
        if campaign is None or campaign.started_at is None:
            return None
        if campaign.snapshot_after is not None:
            return None  # the test's audience is still being written
        wait = campaign_winner_wait(campaign=campaign)
        if not wait.due(now):
            return None
        results = campaign_results(campaign=campaign)
        winner, why = winner_choose(
            results=results,
            metric=campaign.winner_metric,
            keys=list(campaign.variants.values_list("key", flat=True)),
        )
        if not winner:
            return None
        if wait.at_cap:
            why += "; " + _at_cap_note(wait)
        version_id = campaign.variants.get(key=winner).template_version_id
        Campaign.objects.filter(pk=campaign.pk).update(
            winner=winner, winner_picked_at=now, updated_at=now
        )
        due = due_sql(campaign)
        with connection.cursor() as cursor:
            cursor.execute(
                _RELEASE_REST_SQL.format(due=due),
                {
                    "campaign": campaign.pk,
                    "waiting": WAITING_FOR_WINNER,
                    "version": version_id,
                    "default_zone": settings.JOURNEYLINE_DEFAULT_TIMEZONE,
                    "now": now,
                    "sweep_at": now + sweep_after(),
                    "throttle": campaign.throttle_per_minute or 1,
                    "local_time": campaign.local_time,
                },
            )
            released = sorted(row[0] for row in cursor.fetchall())
        status_changes_record(
            changes=[
                (i, MessageStatus.DEFERRED, MessageStatus.QUEUED, f"A/B winner {winner}", {})
                for i in released
            ],
            actor=actor,
        )
        rates = {
            result.variant: round(result.rate(campaign.winner_metric), 6)
            for result in results
            if result.variant not in (HOLDOUT, REST)
        }
        CampaignStatusChange.objects.create(
            campaign=campaign,
            from_status=campaign.status,
            to_status=campaign.status,
            actor=actor,
            reason=f"winner on {campaign.get_winner_metric_display().lower()}: {winner} "
            f"({why}); {len(released)} of the rest get it",
            data={
                "winner": winner,
                "why": why,
                "metric": campaign.winner_metric,
                "rates": rates,
                "rest": len(released),
                "unsent": wait.unsent,
                "last_sent_at": wait.last_sent_at.isoformat() if wait.last_sent_at else None,
                "at_cap": wait.at_cap,
            },
        )
        if due == DUE_NOW:
            messages_dispatch_on_commit(message_ids=released)
    logger.info(
        "campaign winner picked",
        extra={"campaign_id": campaign_id, "winner": winner, "rest": len(released)},
    )
    return WinnerReport(winner=winner, why=why, rest=len(released))


def _at_cap_note(wait: WinnerWait) -> str:
    hours = settings.CAMPAIGN_WINNER_MAX_WAIT_HOURS
    if wait.unsent:
        return f"picked at the {hours} h cap with {wait.unsent} test messages not sent"
    return f"picked at the {hours} h cap: the last test message was sent too late for a window"


def campaign_has_unsent(*, campaign_id: int) -> bool:
    return Message.objects.filter(
        campaign_id=campaign_id,
        status__in=[MessageStatus.QUEUED, MessageStatus.DEFERRED, MessageStatus.SENDING],
    ).exists()
