"""`manage.py export_profiles`: the admin's profile export, from a shell or a cron job."""

import os
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import TokenStatus
from admin_ext.export import (
    FORMATS,
    STATUS_NONE,
    export_columns,
    field_choices,
    filter_profiles,
    iter_export,
    write_export,
)


class ProgressBar:
    """A one-line bar on a terminal; exports can take a while on large tables."""

    WIDTH = 30

    def __init__(self, total: int, write: Callable[[str], None]) -> None:
        self.total = total
        self.write = write

    def __call__(self, done: int) -> None:
        share = done / self.total if self.total else 1.0
        filled = int(self.WIDTH * share)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.write(f"\r[{bar}] {done:,}/{self.total:,} profiles ({share:.0%})")

    def finish(self) -> None:
        self.write("\n")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"--joined-after wants a date as YYYY-MM-DD, not {text!r}.") from exc


class Command(BaseCommand):
    help = (
        "Export profiles as CSV, XLSX or JSON with the same columns and filters as the "
        "admin's Export. Data goes to the file (or stdout with -o -); the progress bar "
        "goes to stderr."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=sorted(FORMATS), default="csv")
        parser.add_argument(
            "-o", "--output", required=True, help="File to write, or - for stdout."
        )
        parser.add_argument(
            "--token-status",
            choices=[*TokenStatus.values, STATUS_NONE],
            help="Status of the profile's current token; 'none' for profiles without one.",
        )
        parser.add_argument(
            "--joined-after", type=_day, help="Joined X on or after this day (YYYY-MM-DD, UTC)."
        )
        parser.add_argument(
            "--search", help="Words to find in screen name, name, X user id or email."
        )
        parser.add_argument(
            "--fields",
            help="Comma-separated columns to export (default: all): "
            + ", ".join(name for name, _ in field_choices()),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        export_format = FORMATS[options["format"]]
        columns = export_columns(self._field_names(options["fields"]))
        queryset = filter_profiles(
            token_status=options["token_status"],
            joined_after=options["joined_after"],
            search=options["search"],
        )
        progress = None
        if self.stderr.isatty():
            progress = ProgressBar(queryset.count(), self._to_stderr)
        if options["output"] == "-":
            self._write_stdout(queryset, export_format.name, columns, progress)
        else:
            path = Path(options["output"])
            self._write_file(path, queryset, export_format.name, columns, progress)
        if progress:
            progress.finish()

    def _to_stderr(self, text: str) -> None:
        # Plain text, no trailing newline: the bar redraws itself with "\r".
        self.stderr.write(text, style_func=str, ending="")
        self.stderr.flush()

    def _field_names(self, fields: str | None) -> list[str] | None:
        if not fields:
            return None
        names = [name.strip() for name in fields.split(",") if name.strip()]
        known = {name for name, _ in field_choices()}
        if unknown := [name for name in names if name not in known]:
            raise CommandError(
                f"Unknown field(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
            )
        return names

    def _write_stdout(self, queryset, format_name, columns, progress) -> None:
        if format_name == "xlsx":
            binary = getattr(self.stdout, "buffer", None)
            if binary is None or self.stdout.isatty():
                raise CommandError("XLSX is binary: give -o FILE or redirect stdout to a file.")
            write_export(queryset, columns, format_name, binary, progress)
            binary.flush()
            return
        for piece in iter_export(queryset, columns, format_name, progress):
            self.stdout.write(piece, ending="")
        self.stdout.flush()

    def _write_file(self, path: Path, queryset, format_name, columns, progress) -> None:
        """Write beside the target and rename at the end, so a failed export leaves
        any earlier file intact instead of a truncated one."""
        partial = path.with_name(path.name + ".part")
        try:
            if format_name == "xlsx":
                write_export(queryset, columns, format_name, str(partial), progress)
            else:
                with partial.open("w", encoding="utf-8", newline="") as out:
                    write_export(queryset, columns, format_name, out, progress)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
