"""`manage.py prune_exports [--days N]`: delete finished profile exports past retention.

Run it daily from cron (or a scheduler); see admin_ext.export_retention.
"""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from admin_ext.export_retention import prune_exports


class Command(BaseCommand):
    help = "Delete finished profile export jobs and their files older than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days",
            type=float,
            default=None,
            help="keep this many days (default: the EXPORT_RETENTION_DAYS setting)",
        )

    def handle(self, *args, days: float | None, **options) -> None:
        if days is not None and days < 0:
            raise CommandError("--days cannot be negative.")
        older_than = None if days is None else timedelta(days=days)
        pruned = prune_exports(older_than)
        self.stdout.write(f"Deleted {pruned.jobs} export job(s) and {pruned.files} file(s).")
