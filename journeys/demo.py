"""The demo's journeys: cart abandonment, a welcome series, a post-purchase cross-sell and
a win-back for customers with a high churn score, created and published once, then the
journeys clock moved forward so waiting customers come due within a tick or two."""

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from campaigns.demo import demo_templates_ensure
from campaigns.models import MessageTemplate
from consent.management.commands.consent_demo_seed import DEMO_TOPICS
from consent.models import Topic
from customers.demo import store
from customers.demo.steps import DemoRun
from customers.models import Event
from journeys import clock
from journeys.models import Journey
from journeys.reactors import on_events
from journeys.services.journeys import journey_create, journey_publish
from journeys.services.tick import enrolments_due_tick
from segments.models import Segment
from segments.services.definitions import segment_create

WELCOME_EMAIL = "Demo: welcome email"
CART_SMS = "Demo: cart reminder SMS"
PUSH = "Demo: back in stock push"

HIGH_CHURN_SEGMENT = "demo-high-churn"
DOUBLE_OPT_IN_TOPIC = "deals"  # the demo topic with double opt-in (consent_demo_seed)
NEWSLETTER_TOPIC = "newsletter"

# The clock moves past the cart journey's two waits (1 h, then 1 day), a tick after each,
# so its customers reach the reminder and then the SMS offer while the demo runs.
CLOCK_STEPS = (
    dt.timedelta(hours=1, minutes=5),
    dt.timedelta(days=1, minutes=5),
    dt.timedelta(days=2),  # the welcome (2 days) and cross-sell (3 days) waits too
)
# The store's last day of events is replayed into the journeys when they are first
# published (they did not exist when the store's events came in), at most this many.
REPLAY_HOURS = 24
REPLAY_LIMIT = 5_000
REPLAYED_EVENTS = (store.PRODUCT_ADDED, store.ORDER_COMPLETED, store.SIGNED_UP)


def _cart_abandonment(templates: dict[str, int]) -> dict:
    correlation = {"property": "cart_id"}  # the demo store sends cart_id on both events
    return {
        "name": "Demo: cart abandonment",
        "description": "Product added, no order within an hour: push if allowed, else "
        "email; a day later, still no order: an SMS offer.",
        "entry_policy": Journey.EntryPolicy.AGAIN_AFTER_LEAVING,
        "goal_event": store.ORDER_COMPLETED,
        "goal_window_hours": 72,
        "holdout_share": Decimal("0.1"),
        "graph": {
            "schema": 1,
            "steps": [
                {
                    "id": "start",
                    "kind": "trigger",
                    "config": {"type": "event", "event": store.PRODUCT_ADDED},
                    "exits": {"next": "wait_order"},
                },
                {
                    "id": "wait_order",
                    "kind": "wait_for_event",
                    "config": {
                        "event": store.ORDER_COMPLETED,
                        "timeout": {"hours": 1},
                        "correlation": correlation,
                    },
                    "exits": {"event": "ordered", "timeout": "remind"},
                },
                {
                    "id": "remind",
                    "kind": "send_best_channel",
                    "config": {
                        "channels": [
                            {"channel": "push", "template": templates[PUSH]},
                            {"channel": "email", "template": templates[WELCOME_EMAIL]},
                        ],
                        "topic": DOUBLE_OPT_IN_TOPIC,
                    },
                    "exits": {"next": "wait_day"},
                },
                {
                    "id": "wait_day",
                    "kind": "wait",
                    "config": {"duration": {"days": 1}},
                    "exits": {"next": "still_no_order"},
                },
                {
                    "id": "still_no_order",
                    "kind": "condition",
                    "config": {
                        "rule": {
                            "not": {
                                "event": {
                                    "name": store.ORDER_COMPLETED,
                                    "min_count": 1,
                                    "within_days": 2,
                                }
                            }
                        }
                    },
                    "exits": {"yes": "offer", "no": "ordered"},
                },
                {
                    "id": "offer",
                    "kind": "send",
                    "config": {
                        "channel": "sms",
                        "template": templates[CART_SMS],
                        "topic": DOUBLE_OPT_IN_TOPIC,
                    },
                    "exits": {"next": "done"},
                },
                {"id": "ordered", "kind": "exit", "config": {"reason": "ordered"}},
                {"id": "done", "kind": "exit"},
            ],
        },
    }


def _welcome_series(templates: dict[str, int]) -> dict:
    return {
        "name": "Demo: welcome series",
        "description": "On sign-up: a welcome email, then two days later deals for those "
        "who confirmed the double opt-in topic.",
        "entry_policy": Journey.EntryPolicy.ONCE,
        "graph": {
            "schema": 1,
            "steps": [
                {
                    "id": "start",
                    "kind": "trigger",
                    "config": {"type": "event", "event": store.SIGNED_UP},
                    "exits": {"next": "welcome"},
                },
                {
                    "id": "welcome",
                    "kind": "send",
                    "config": {
                        "channel": "email",
                        "template": templates[WELCOME_EMAIL],
                        "topic": NEWSLETTER_TOPIC,
                    },
                    "exits": {"next": "wait"},
                },
                {
                    "id": "wait",
                    "kind": "wait",
                    "config": {"duration": {"days": 2}},
                    "exits": {"next": "deals"},
                },
                {
                    # The consent gate sends only to customers who confirmed the topic.
                    "id": "deals",
                    "kind": "send_best_channel",
                    "config": {
                        "channels": [
                            {"channel": "push", "template": templates[PUSH]},
                            {"channel": "email", "template": templates[WELCOME_EMAIL]},
                        ],
                        "topic": DOUBLE_OPT_IN_TOPIC,
                    },
                    "exits": {"next": "done"},
                },
                {"id": "done", "kind": "exit"},
            ],
        },
    }


def _cross_sell(templates: dict[str, int]) -> dict:
    return {
        "name": "Demo: post-purchase cross-sell",
        "description": "Three days after an order: recommendations by email.",
        "entry_policy": Journey.EntryPolicy.ONCE_PER_PERIOD,
        "entry_period_days": 14,
        "goal_event": store.ORDER_COMPLETED,
        "goal_window_hours": 24 * 14,
        "graph": {
            "schema": 1,
            "steps": [
                {
                    "id": "start",
                    "kind": "trigger",
                    "config": {"type": "event", "event": store.ORDER_COMPLETED},
                    "exits": {"next": "wait"},
                },
                {
                    "id": "wait",
                    "kind": "wait",
                    "config": {"duration": {"days": 3}},
                    "exits": {"next": "recommend"},
                },
                {
                    # The welcome template renders the recommendations it is given.
                    "id": "recommend",
                    "kind": "send",
                    "config": {
                        "channel": "email",
                        "template": templates[WELCOME_EMAIL],
                        "topic": DOUBLE_OPT_IN_TOPIC,
                    },
                    "exits": {"next": "done"},
                },
                {"id": "done", "kind": "exit"},
            ],
        },
    }


def _win_back(templates: dict[str, int]) -> dict:
    return {
        "name": "Demo: win-back",
        "description": "Customers entering the high churn score segment: a nudge, then an "
        "SMS offer a week later if they have not ordered.",
        "entry_policy": Journey.EntryPolicy.ONCE_PER_PERIOD,
        "entry_period_days": 30,
        "goal_event": store.ORDER_COMPLETED,
        "goal_window_hours": 24 * 14,
        "holdout_share": Decimal("0.1"),
        "graph": {
            "schema": 1,
            "steps": [
                {
                    "id": "start",
                    "kind": "trigger",
                    "config": {"type": "segment", "segment": HIGH_CHURN_SEGMENT, "on": "entered"},
                    "exits": {"next": "nudge"},
                },
                {
                    "id": "nudge",
                    "kind": "send_best_channel",
                    "config": {
                        "channels": [
                            {"channel": "push", "template": templates[PUSH]},
                            {"channel": "email", "template": templates[WELCOME_EMAIL]},
                        ],
                        "topic": DOUBLE_OPT_IN_TOPIC,
                    },
                    "exits": {"next": "wait_order"},
                },
                {
                    "id": "wait_order",
                    "kind": "wait_for_event",
                    "config": {"event": store.ORDER_COMPLETED, "timeout": {"days": 7}},
                    "exits": {"event": "won_back", "timeout": "offer"},
                },
                {
                    "id": "offer",
                    "kind": "send",
                    "config": {
                        "channel": "sms",
                        "template": templates[CART_SMS],
                        "topic": DOUBLE_OPT_IN_TOPIC,
                    },
                    "exits": {"next": "done"},
                },
                {"id": "won_back", "kind": "exit", "config": {"reason": "ordered"}},
                {"id": "done", "kind": "exit"},
            ],
        },
    }


def _high_churn_segment_ensure() -> None:
    if not Segment.objects.filter(key=HIGH_CHURN_SEGMENT).exists():
        segment_create(
            key=HIGH_CHURN_SEGMENT,
            name="Demo: high churn score",
            rules={"score": {"model": "churn", "op": "above", "value": 0.7}},
            description="Customers whose latest churn score is above 0.7.",
        )


@transaction.atomic
def demo_journeys_ensure(*, now: dt.datetime) -> tuple[list[Journey], int]:
    """Create and publish the demo journeys that are missing; leave existing ones alone.

    Returns the journeys and how many of them were published now."""
    demo_templates_ensure(now=now)
    for topic in DEMO_TOPICS:
        Topic.objects.get_or_create(key=topic["key"], defaults=topic)
    _high_churn_segment_ensure()
    templates = dict(
        MessageTemplate.objects.filter(name__in=[WELCOME_EMAIL, CART_SMS, PUSH]).values_list(
            "name", "pk"
        )
    )
    journeys = []
    published = 0
    for build in (_cart_abandonment, _welcome_series, _cross_sell, _win_back):
        spec = build(templates)
        journey = Journey.objects.filter(name=spec["name"]).first()
        if journey is None:
            journey = journey_create(**spec)
        if journey.live_version_id is None:
            journey_publish(journey=journey, by="demo")
            journey.refresh_from_db()
            published += 1
        journeys.append(journey)
    return journeys, published


def demo_events_replay() -> int:
    """Hand the store's last day of journey events to the journeys reactor, one at a time
    in their order, so an order resumes the cart wait its own Product Added started."""
    latest = Event.objects.filter(type=Event.Type.TRACK).aggregate(latest=Max("timestamp"))
    if latest["latest"] is None:
        return 0
    events = Event.objects.filter(
        type=Event.Type.TRACK,
        name__in=REPLAYED_EVENTS,
        timestamp__gt=latest["latest"] - dt.timedelta(hours=REPLAY_HOURS),
    ).order_by("timestamp", "pk")[:REPLAY_LIMIT]
    # Each event is handed over at the time it happened (on the journeys clock), so the
    # customers enter, wait and reach their goal on the store's own timeline: a goal is
    # only credited for an order placed after entering, and the clock steps below carry
    # the waits forward from there.
    offset = clock.offset()
    count = 0
    for event in events:
        on_events([event], now=event.timestamp + offset)
        count += 1
    return count


def load(run: DemoRun) -> list[str]:
    journeys, published = demo_journeys_ensure(now=dt.datetime.now(tz=dt.UTC))
    # Only on the first run: a rerun would enrol the same customers again.
    replayed = demo_events_replay() if published else 0
    # Every process reads the clock's offset from the database; ticking here after each
    # move carries the customers through both waits now rather than on a later beat.
    moved = 0
    for step in CLOCK_STEPS:
        clock.clock_advance(by=step)
        moved += enrolments_due_tick()
    lines = [
        f"Journeys: {replayed} recent store events replayed, clock moved forward "
        f"{sum(CLOCK_STEPS, dt.timedelta())}, {moved} waiting customers moved on"
    ]
    lines += [
        f"Journey {journey.name[len('Demo: ') :]}: {run.url}/admin/journeys/journey/{journey.pk}/change/"
        for journey in journeys
    ]
    return lines
