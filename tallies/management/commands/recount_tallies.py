from django.apps import apps
from django.core.management.base import BaseCommand

from tallies.recount import rebuild


class Command(BaseCommand):
    help = "Recount the dashboard's figures from the rows (after writes that bypassed Django)."

    def handle(self, *args, **options) -> None:
        figures = rebuild(apps)
        self.stdout.write(f"Recounted {len(figures)} figures.")
