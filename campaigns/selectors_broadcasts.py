"""Reading broadcasts: progress, results per variant, uplift over the holdout."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from campaigns.models import Campaign

HOLDOUT = "holdout"
# Those outside the test group, who get the winning variant after the test window.
REST = "rest"


def campaign_progress(*, campaign_id: int) -> dict[str, int]:
    """Messages of the campaign by status (holdout rows not counted)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, count(*) FROM campaigns_message "
            "WHERE campaign_id = %s AND variant <> 'holdout' GROUP BY status",
            [campaign_id],
        )
        return dict(cursor.fetchall())


@dataclass(frozen=True)
class VariantResult:
    variant: str
    recipients: int
    sent: int
    delivered: int
    opened: int
    clicked: int
    converted: int
    # Conversion rate against the holdout's, and how sure we are it is not chance.
    uplift: float | None = None
    confidence: float | None = None

    @property
    def conversion_rate(self) -> float:
        return self.converted / self.recipients if self.recipients else 0.0

    def rate(self, metric: str) -> float:
        base = self.sent or 1
        if metric == "converted":
            return self.conversion_rate
        return getattr(self, metric) / base if self.sent else 0.0


def two_proportion_confidence(
    *, successes_a: int, total_a: int, successes_b: int, total_b: int
) -> float | None:
    """1 minus the two-sided p-value of a two-proportion z-test (pooled); None without data."""
    if not total_a or not total_b:
        return None
    pooled = (successes_a + successes_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if spread == 0:
        return None
    z = abs(successes_a / total_a - successes_b / total_b) / spread
    p_value = math.erfc(z / math.sqrt(2))
    return 1 - p_value


_RESULTS_SQL = """
SELECT m.variant,
       count(*),
       count(*) FILTER (WHERE m.sent_at IS NOT NULL),
       count(*) FILTER (WHERE m.status IN ('delivered', 'opened', 'clicked', 'complained')),
       count(*) FILTER (WHERE m.status IN ('opened', 'clicked')),
       count(*) FILTER (WHERE m.status = 'clicked'),
       count(*) FILTER (WHERE %(event)s <> '' AND EXISTS (
           SELECT 1 FROM customers_event e
           WHERE e.customer_id = m.customer_id AND e.name = %(event)s
             AND e.timestamp >= m.created_at
             AND e.timestamp < m.created_at + make_interval(hours => %(hours)s)))
FROM campaigns_message m
WHERE m.campaign_id = %(campaign)s
GROUP BY m.variant ORDER BY m.variant
"""


def campaign_results(*, campaign: Campaign) -> list[VariantResult]:
    """Per variant (and the holdout): sent, delivered, opened, clicked, converted, with the
    uplift of the conversion rate over the holdout's and its confidence."""
    with connection.cursor() as cursor:
        cursor.execute(
            _RESULTS_SQL,
            {
                "campaign": campaign.pk,
                "event": campaign.conversion_event,
                "hours": campaign.conversion_window_hours,
            },
        )
        rows = cursor.fetchall()
    raw = [VariantResult(*row) for row in rows]
    holdout = next((result for result in raw if result.variant == HOLDOUT), None)
    results = []
    for result in raw:
        if holdout is not None and result.variant != HOLDOUT and campaign.conversion_event:
            result = VariantResult(
                **{
                    **result.__dict__,
                    "uplift": result.conversion_rate - holdout.conversion_rate,
                    "confidence": two_proportion_confidence(
                        successes_a=result.converted,
                        total_a=result.recipients,
                        successes_b=holdout.converted,
                        total_b=holdout.recipients,
                    ),
                }
            )
        results.append(result)
    return results


def winner_choose(
    *, results: list[VariantResult], metric: str, keys: list[str] | None = None
) -> tuple[str, str]:
    """The winning variant of an A/B test and why; pure.

    The rule (docs/messages.md): the best rate on the metric among the test variants; a
    tie goes to the variant that sent more (the larger sample), then to the first key (A,
    the control). With no data at all (nothing sent), the first key wins too, so the rest
    of the audience is never left waiting for a test that cannot be decided. ``keys`` are
    the campaign's variants: one that got no recipient at all (a tiny test group) counts
    as one with no data.
    """
    tested = sorted(
        (result for result in results if result.variant not in (HOLDOUT, REST)),
        key=lambda result: result.variant,
    )
    candidates = sorted({*(keys or ()), *(result.variant for result in tested)})
    if not candidates:
        return "", "no variants"
    if not any(result.sent for result in tested):
        return candidates[0], "no data: nothing was sent, the first variant wins"
    best = max(result.rate(metric) for result in tested)
    leaders = [result for result in tested if result.rate(metric) == best]
    if len(leaders) == 1:
        return leaders[0].variant, "best rate"
    most_sent = max(result.sent for result in leaders)
    leaders = [result for result in leaders if result.sent == most_sent]
    if len(leaders) == 1:
        return leaders[0].variant, "tie on the rate: more messages sent"
    return leaders[0].variant, "tie on the rate and the messages sent: the first variant"


def campaign_winner(*, campaign: Campaign) -> str:
    """The variant that wins on the campaign's metric today ('' with no variants)."""
    results = campaign_results(campaign=campaign)
    keys = list(campaign.variants.values_list("key", flat=True))
    return winner_choose(results=results, metric=campaign.winner_metric, keys=keys)[0]


# Test messages not out yet: while any is in one of these, the winner waits.
UNSENT = ("queued", "deferred", "sending")


@dataclass(frozen=True)
class WinnerWait:
    """When an A/B test's winner may be picked, and what it waits for (docs/messages.md)."""

    # Test-group messages queued, deferred or sending.
    unsent: int
    last_sent_at: dt.datetime | None
    # The test window: test_window_hours from the start, or from the last test message
    # sent when that was later; None while test messages are unsent.
    window_ends_at: dt.datetime | None
    # The latest the pick waits for unsent or late test messages.
    cap_at: dt.datetime

    @property
    def pick_at(self) -> dt.datetime:
        if self.window_ends_at is None:
            return self.cap_at
        return min(self.window_ends_at, self.cap_at)

    @property
    def at_cap(self) -> bool:
        """The pick is due at the cap, not at the window's end (sends unfinished or late)."""
        return self.pick_at == self.cap_at and self.window_ends_at != self.cap_at

    def due(self, now: dt.datetime) -> bool:
        return now >= self.pick_at


def winner_wait(
    *,
    started_at: dt.datetime,
    test_window_hours: int,
    unsent: int,
    last_sent_at: dt.datetime | None,
    max_wait_hours: int,
) -> WinnerWait:
    """The rule for when the winner is picked; pure.

    Every test message gets the whole window to be opened, clicked or converted on: the
    window counts from the last test message sent (from the start if that was earlier, or
    nothing was sent), and while any is queued, deferred or sending (a throttled or
    local-time test, quiet hours, retries) there is no end yet. So that nothing waits
    forever, the pick happens at the latest ``max_wait_hours`` after the window would
    have ended counted from the start, with what was sent by then.
    """
    window = dt.timedelta(hours=test_window_hours)
    cap_at = started_at + window + dt.timedelta(hours=max_wait_hours)
    window_ends_at = None
    if not unsent:
        window_ends_at = max(started_at, last_sent_at or started_at) + window
    return WinnerWait(
        unsent=unsent, last_sent_at=last_sent_at, window_ends_at=window_ends_at, cap_at=cap_at
    )


def campaign_winner_wait(*, campaign: Campaign) -> WinnerWait | None:
    """Where the campaign's A/B test stands; None before it starts or without a pick."""
    if not campaign.pick_winner or campaign.started_at is None:
        return None
    with connection.cursor() as cursor:
        # One pass over the campaign's rows (the campaign index), every 30 s per campaign
        # still waiting for its winner.
        cursor.execute(
            "SELECT count(*) FILTER (WHERE status = ANY(%s)), max(sent_at) "
            "FROM campaigns_message WHERE campaign_id = %s "
            "AND variant NOT IN ('holdout', 'rest')",
            [list(UNSENT), campaign.pk],
        )
        unsent, last_sent_at = cursor.fetchone()
    return winner_wait(
        started_at=campaign.started_at,
        test_window_hours=campaign.test_window_hours,
        unsent=unsent,
        last_sent_at=last_sent_at,
        max_wait_hours=settings.CAMPAIGN_WINNER_MAX_WAIT_HOURS,
    )
