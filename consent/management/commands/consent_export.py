import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from consent.management.commands._customer_arg import customer_from_argument
from consent.services.privacy import customer_export


class Command(BaseCommand):
    help = "Export everything held about a customer as one JSON document (recorded)."

    def add_arguments(self, parser):
        parser.add_argument("customer", help="External id, or #id for an anonymous profile.")
        parser.add_argument("--by", required=True, help="Who asks (kept in the audit trail).")
        parser.add_argument("--output", help="Write to this file instead of standard output.")

    def handle(self, *args, customer, by, output=None, **options):
        if not by.strip():
            raise CommandError("--by must name who asks for the export")
        found = customer_from_argument(customer)
        document = customer_export(customer_id=found.pk, requested_by=by, channel="command")
        text = json.dumps(document, indent=2, ensure_ascii=False, default=str)
        if output:
            Path(output).write_text(text + "\n", encoding="utf-8")
            self.stdout.write(f"exported customer #{found.pk} to {output}")
        else:
            self.stdout.write(text)
