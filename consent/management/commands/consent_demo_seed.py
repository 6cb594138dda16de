import random

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from consent.models import ConsentEvent, Topic
from consent.services.ledger import consent_import
from consent.tokens import preferences_link
from customers.models import Customer

DEMO_TOPICS = [
    {
        "key": "newsletter",
        "name": "Newsletter",
        "description": "Our monthly newsletter: new collections and stories.",
        "channels": ["email"],
        "default": Topic.Default.OPT_IN,
        "double_opt_in": False,
    },
    {
        "key": "deals",
        "name": "Deals and discounts",
        "description": "Sales and personal offers, a few times a month.",
        "channels": ["email", "sms", "push"],
        "default": Topic.Default.OPT_IN,
        "double_opt_in": True,
    },
    {
        "key": "order-updates",
        "name": "Back in stock and price drops",
        "description": "When something you looked at is back or cheaper.",
        "channels": ["email", "push"],
        "default": Topic.Default.OPT_OUT,
        "double_opt_in": False,
    },
]


class Command(BaseCommand):
    help = "Demo: create subscription topics, give existing customers mixed consent, and "
    "print a preference-centre link. Runs once; later runs only print the link."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=42)

    @transaction.atomic
    def handle(self, *args, seed: int, **options):
        for topic in DEMO_TOPICS:
            Topic.objects.get_or_create(key=topic["key"], defaults=topic)
        customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
        if not customer_ids:
            raise CommandError("no customers yet: load the demo events first")
        if not ConsentEvent.objects.filter(source="import", actor="demo").exists():
            rng = random.Random(seed)
            rows = []
            for customer_id in customer_ids:
                roll = rng.random()
                if roll < 0.6:
                    rows.append(
                        {
                            "customer_id": customer_id,
                            "channel": "email",
                            "topic": "newsletter",
                            "action": "grant",
                        }
                    )
                if 0.3 < roll < 0.7:
                    rows.append(
                        {
                            "customer_id": customer_id,
                            "channel": "email",
                            "topic": "deals",
                            "action": "grant",
                        }
                    )
                if 0.5 < roll < 0.6:
                    rows.append(
                        {
                            "customer_id": customer_id,
                            "channel": "sms",
                            "topic": "deals",
                            "action": "grant",
                        }
                    )
                if roll > 0.9:
                    rows.append(
                        {
                            "customer_id": customer_id,
                            "channel": "email",
                            "topic": None,
                            "action": "withdraw",
                        }
                    )
            count = consent_import(rows=rows, actor="demo")
            self.stdout.write(
                f"recorded {count} demo consent rows for {len(customer_ids)} customers"
            )
        self.stdout.write(f"preference centre: {preferences_link(customer_id=customer_ids[0])}")
