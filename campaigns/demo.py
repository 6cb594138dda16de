"""The demo's message templates: one per channel, published, in English and French."""

import datetime as dt

from django.db import transaction

from campaigns.models import MessageTemplate, TemplateVersion
from campaigns.services.templates import template_version_create, template_version_publish
from consent.channels import Channel
from customers.demo.steps import DemoRun

WELCOME_HTML = """<h1>Welcome, {{ customer.first_name|default('friend') }}!</h1>
<p>Thanks for joining Journeyline Outfitters. Here is what is new this week:</p>
<ul>
{% for item in recommendations %}
  <li><a href="{{ item.url }}">{{ item.name }}</a> — {{ item.price|money('EUR') }}</li>
{% else %}
  <li><a href="https://shop.example.com/new">New arrivals</a></li>
{% endfor %}
</ul>
<p>Joined {{ customer.first_seen|date('long') }}.</p>
"""

WELCOME_HTML_FR = """<h1>Bienvenue, {{ customer.first_name|default('cher client') }} !</h1>
<p>Merci de nous avoir rejoints. Les nouveautés de la semaine :</p>
<ul>
{% for item in recommendations %}
  <li><a href="{{ item.url }}">{{ item.name }}</a> — {{ item.price|money('EUR') }}</li>
{% else %}
  <li><a href="https://shop.example.com/nouveau">Nouveautés</a></li>
{% endfor %}
</ul>
"""

TEMPLATES = [
    {
        "name": "Demo: welcome email",
        "channel": Channel.EMAIL,
        "description": "Sent when a customer signs up.",
        "contents": [
            {
                "locale": "en",
                "subject": "Welcome to Journeyline Outfitters, {{ customer.first_name|default('friend') }}",
                "preheader": "Your first picks are inside",
                "html": WELCOME_HTML,
                "layout": "base",
            },
            {
                "locale": "fr",
                "subject": "Bienvenue chez Journeyline Outfitters",
                "preheader": "Vos premières suggestions",
                "html": WELCOME_HTML_FR,
                "layout": "base",
            },
        ],
    },
    {
        "name": "Demo: cart reminder SMS",
        "channel": Channel.SMS,
        "description": "A nudge for an abandoned cart.",
        "contents": [
            {
                "locale": "en",
                "body": "{{ customer.first_name|default('Hi') }}, your cart is waiting: "
                "{{ event.properties.cart_url|default('https://shop.example.com/cart') }} "
                "Reply STOP to opt out.",
            }
        ],
    },
    {
        "name": "Demo: back in stock push",
        "channel": Channel.PUSH,
        "description": "A product the customer viewed is back.",
        "contents": [
            {
                "locale": "en",
                "title": "Back in stock 🎉",
                "body": "{{ event.properties.product_name|default('An item you liked') }} is back.",
                "deep_link": "shop://product/{{ event.properties.product_id|default('') }}",
                "data": {"kind": "back_in_stock"},
            }
        ],
    },
    {
        "name": "Demo: CRM webhook",
        "channel": Channel.WEBHOOK,
        "description": "Tells the CRM about a high-value customer.",
        "contents": [
            {
                "locale": "en",
                "url": "https://crm.example.com/hooks/journeyline",
                "method": "POST",
                "headers": {"X-Source": "journeyline"},
                "body": '{"customer": {{ customer.external_id|tojson }}, '
                '"email": {{ customer.email|tojson }}}',
            }
        ],
    },
]


@transaction.atomic
def demo_templates_ensure(*, now: dt.datetime) -> int:
    """Create the demo templates that are missing, each with a published first version."""
    created = 0
    for spec in TEMPLATES:
        template, is_new = MessageTemplate.objects.get_or_create(
            name=spec["name"],
            defaults={"channel": spec["channel"], "description": spec["description"]},
        )
        if not is_new and TemplateVersion.objects.filter(template=template).exists():
            continue
        version = template_version_create(
            template=template, contents=spec["contents"], created_by="demo", note="Demo", now=now
        )
        template_version_publish(version=version, published_by="demo", now=now)
        created += 1
    return created


def load(run: DemoRun) -> list[str]:
    demo_templates_ensure(now=dt.datetime.now(tz=dt.UTC))
    return [
        f"Message templates (email, SMS, push, webhook): {run.url}/admin/campaigns/messagetemplate/"
    ]
