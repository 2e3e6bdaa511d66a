"""`python manage.py create_api_key --name NAME`: make a key for the JSON API (SPEC §6)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from partners.services.api_keys import api_key_create


class Command(BaseCommand):
    help = (
        "Make an API key and print it on the last line of the output. Only its hash is "
        "stored: the key cannot be shown again. Revoke keys in the admin."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--name", required=True, help="Who or what uses the key, e.g. 'shop backend'."
        )

    def handle(self, *args, name: str, **options):
        try:
            key, raw_key = api_key_create(name=name)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(
            f'API key "{key.name}" made (starts with {key.prefix}). It is shown only this '
            "once; send it as 'Authorization: Bearer <key>':"
        )
        self.stdout.write(raw_key)
