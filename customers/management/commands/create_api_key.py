from django.core.management.base import BaseCommand, CommandError

from customers.services.api_keys import InvalidScopes, api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key and print it. The key is printed alone on the last line, "
        "so that scripts can take it with `tail -n 1`; it is never shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument(
            "--scopes",
            required=True,
            help="Comma-separated scopes: ingest, read, write, admin (such as ingest,read).",
        )

    def handle(self, *args, name: str, scopes: str, **options):
        try:
            api_key, raw_key = api_key_create(
                name=name, scopes=scopes.split(","), created_by="manage.py create_api_key"
            )
        except InvalidScopes as error:
            raise CommandError(str(error)) from None
        except ValueError as error:  # an empty name
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Created API key {api_key.name!r} (prefix {api_key.prefix}, scopes "
            f"{', '.join(api_key.scopes)}). Store it now: it is not shown again."
        )
        self.stdout.write(raw_key)
