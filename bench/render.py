"""Render benchmark: personalised emails per second through Journeyline's render path
(context building, sandboxed environments, layout, derived plain text) against a raw
Jinja render of the same templates, with the same filters, in the same run, on one core.

    .venv/bin/python bench/render.py [--renders 5000] [--rounds 3]

Prints both figures and their ratio (target: ratio <= 1.5 and >= 5,000 renders/s).
"""

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from campaigns.rendering import ContentSource, VersionSource, build_context, render
from campaigns.rendering import environment as message_environment
from campaigns.rendering.render import derive_text_source

SUBJECT = "{{ customer.first_name }}, your picks for this week"
PREHEADER = (
    "{{ recommendations|length }} new picks, from {{ recommendations[0].price|money('EUR') }}"
)
HTML = """<h1>Hello {{ customer.first_name|default('there') }},</h1>
<p>Thanks for your order #{{ event.properties.order_id }} of {{ event.properties.total|money('EUR') }}.
{% if customer.traits.vip is defined and customer.traits.vip %}As a VIP, shipping is on us.{% endif %}</p>
<p>Since you liked <strong>{{ event.properties.product }}</strong>, we picked
{{ recommendations|length }} item{{ recommendations|length|pluralize }} for you:</p>
<table role="presentation" width="100%">
{% for item in recommendations %}
  <tr>
    <td><a href="{{ item.url }}?utm_source=email&amp;cid={{ customer.id }}">{{ item.name }}</a></td>
    <td align="right">{{ item.price|money('EUR') }}</td>
  </tr>
{% endfor %}
</table>
<p>See you soon,<br>The Shop team</p>
"""

NAMES = ["Ada", "Zoë", "Grace", "Linus", "Ken", "Barbara", "Dennis", "Margaret", "Tim", "Radia"]


def customers(count: int) -> list[dict]:
    return [
        {
            "id": number,
            "external_id": f"user-{number}",
            "email": f"person{number}@example.com",
            "locale": "en",
            "timezone": "Europe/London",
            "traits": {"first_name": NAMES[number % len(NAMES)], "vip": number % 3 == 0},
        }
        for number in range(count)
    ]


def recommendations(number: int) -> list[dict]:
    return [
        {
            "name": f"Product {number % 97 + k} <limited>",
            "url": f"https://shop.test/p/{k}",
            "price": 9.5 + k,
        }
        for k in range(4)
    ]


def event(number: int) -> dict:
    return {
        "name": "Order Completed",
        "properties": {
            "order_id": 1000 + number,
            "total": 42.5 + number % 10,
            "product": "Shoes & socks",
        },
    }


LINKS = {
    "unsubscribe": "https://j.test/u/token",
    "preferences": "https://j.test/p/token",
    "view_in_browser": "https://j.test/v/token",
}


def journeyline_path(version: VersionSource, people: list[dict], now: dt.datetime) -> int:
    size = 0
    for number, person in enumerate(people):
        context = build_context(
            customer=person,
            now=now,
            event=event(number),
            recommendations=recommendations(number),
            links=LINKS,
        )
        message = render(version, context)
        size += len(message.html) + len(message.text)
    return size


def raw_jinja_setup():
    """Plain (unsandboxed) Jinja environments with the same filters and the same templates
    our path compiles: subject, preheader, body, layout, and the text derived from the body."""
    layouts = message_environment.LAYOUT_DIRECTORY
    filters = {
        "money": message_environment.money_filter,
        "date": message_environment.date_filter,
        "datetime": message_environment.datetime_filter,
        "pluralize": message_environment.pluralize_filter,
    }
    html_env = Environment(
        loader=FileSystemLoader(layouts), autoescape=True, undefined=StrictUndefined
    )
    text_env = Environment(
        loader=FileSystemLoader(layouts),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    html_env.filters.update(filters)
    text_env.filters.update(filters)
    return {
        "subject": text_env.from_string(SUBJECT),
        "preheader": text_env.from_string(PREHEADER),
        "html": html_env.from_string(HTML),
        "text": text_env.from_string(derive_text_source(HTML)),
        "layout_html": html_env.get_template("email/base.html"),
        "layout_text": text_env.get_template("email/base.txt"),
    }


def raw_path(templates: dict, contexts: list[dict]) -> int:
    size = 0
    for context in contexts:
        subject = templates["subject"].render(context)
        preheader = templates["preheader"].render(context)
        body = templates["html"].render(context)
        text = templates["text"].render(context)
        layout_context = {**context, "subject": subject, "preheader": preheader}
        html = templates["layout_html"].render({**layout_context, "content": Markup(body)})
        text = templates["layout_text"].render({**layout_context, "content": text})
        size += len(html) + len(text)
    return size


def rates(ours, raw, rounds: int, count: int) -> tuple[float, float]:
    """Best of ``rounds`` for each side, interleaved so that other load on the machine
    falls on both alike. Measured in CPU time of this process (one thread, one core)."""
    best_ours = best_raw = 0.0
    for _ in range(rounds):
        for function, side in ((ours, "ours"), (raw, "raw")):
            started = time.process_time()
            function()
            rate = count / (time.process_time() - started)
            if side == "ours":
                best_ours = max(best_ours, rate)
            else:
                best_raw = max(best_raw, rate)
    return best_ours, best_raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    version = VersionSource(
        id=1,
        channel="email",
        default_locale="en",
        frozen=True,
        contents=(
            ContentSource(
                "en",
                {
                    "subject": SUBJECT,
                    "preheader": PREHEADER,
                    "html": HTML,
                    "text": "",
                    "layout": "base",
                },
            ),
        ),
    )
    people = customers(arguments.renders)
    templates = raw_jinja_setup()
    # The raw side gets its contexts ready-made; ours builds them inside the timed loop.
    contexts = [
        build_context(
            customer=person,
            now=now,
            event=event(n),
            recommendations=recommendations(n),
            links=LINKS,
        )
        for n, person in enumerate(people)
    ]
    # Both produce the same message.
    ours = render(version, contexts[0])
    raw_text = templates["text"].render(contexts[0])
    assert raw_text.strip().splitlines()[0] == ours.text.splitlines()[0]

    journeyline_path(version, people[:200], now)  # warm up caches
    raw_path(templates, contexts[:200])
    ours_rate, raw_rate = rates(
        lambda: journeyline_path(version, people, now),
        lambda: raw_path(templates, contexts),
        arguments.rounds,
        len(people),
    )
    print(f"journeyline render path: {ours_rate:,.0f} emails/s (CPU time, one core)")
    print(f"raw Jinja render:        {raw_rate:,.0f} emails/s (CPU time, one core)")
    print(
        f"time ratio ours/raw:     {raw_rate / ours_rate:.2f} (target <= 1.5, and >= 5,000 emails/s)"
    )


if __name__ == "__main__":
    main()
