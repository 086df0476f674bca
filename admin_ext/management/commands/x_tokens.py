"""`manage.py x_tokens check|refresh|revoke|resume|retry-revocations`: token upkeep for cron.

Runs through the same job machinery as the admin (a BulkJob with one item per
token, audited per account), but in this process: cron wants the outcome and
the exit status, not a queued task. Exit status 1 when any account failed.

    x_tokens refresh --expiring-within 30      # OAuth 2.0 tokens expiring soon
    x_tokens check --all                       # every token not revoked
    x_tokens revoke --user alice --user bob    # disconnect two people from X
    x_tokens resume                            # finish jobs whose runner died
    x_tokens retry-revocations                 # ask X again about pending revocations
"""

import sys
import threading
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from accounts import revocation
from accounts.models import SECRET_COLUMNS, PendingRevocation, Profile, TokenStatus, XToken
from admin_ext import jobs
from admin_ext.models import BulkJob, BulkJobItem, ItemStatus, JobSource, TokenAction

ACTOR_LABEL = "manage.py x_tokens"
RETRY_REVOCATIONS = "retry-revocations"
FAILURES_LISTED = 20
BAR_WIDTH = 30


class Command(BaseCommand):
    help = "Check, refresh or revoke stored X tokens (for cron); resume stalled jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=[*TokenAction.values, "resume", RETRY_REVOCATIONS])
        parser.add_argument(
            "--all", action="store_true", help="every stored token that is not revoked"
        )
        parser.add_argument(
            "--user",
            action="append",
            default=[],
            metavar="USERNAME",
            help="this user's tokens (repeat for more)",
        )
        parser.add_argument(
            "--expiring-within",
            type=int,
            metavar="MINUTES",
            help="only OAuth 2.0 tokens expiring within MINUTES (or already expired)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="list the accounts, change nothing"
        )
        parser.add_argument(
            "--job", type=int, action="append", default=[], help="resume: only this job"
        )

    def handle(self, *args, **options) -> None:
        if options["action"] == "resume":
            self.resume(options["job"], dry_run=options["dry_run"])
            return
        if options["action"] == RETRY_REVOCATIONS:
            self.retry_revocations(dry_run=options["dry_run"])
            return
        tokens, bare_profiles = self.selection(options)
        count = tokens.count() + bare_profiles.count()
        if options["dry_run"]:
            self.list_selection(options["action"], tokens, bare_profiles, count)
            return
        if count == 0:
            self.stdout.write(f"{options['action']}: no tokens selected; nothing to do.")
            return
        job = jobs.create_job(
            options["action"],
            tokens,
            profiles_without_tokens=bare_profiles,
            actor_label=ACTOR_LABEL,
            source=JobSource.COMMAND,
        )
        if not self.run(job):
            sys.exit(1)

    def retry_revocations(self, *, dry_run: bool) -> None:
        """Every pending revocation that is due, now; exit 1 if any is still unconfirmed."""
        if dry_run:
            due = revocation.due_revocations().count()
            self.stdout.write(f"retry-revocations: {due} pending revocations are due.")
            return
        summary = revocation.retry_due_revocations()
        waiting = PendingRevocation.objects.filter(resolved_at__isnull=True).count()
        self.stdout.write(
            f"retry-revocations: {summary.revoked} confirmed by X, {summary.failed} failed; "
            f"{waiting} still pending."
        )
        if summary.failed:
            sys.exit(1)

    # Selection -------------------------------------------------------------------------

    def selection(self, options) -> tuple[QuerySet[XToken], QuerySet[Profile]]:
        usernames = options["user"]
        if not (options["all"] or usernames or options["expiring_within"] is not None):
            raise CommandError("Say which tokens: --all, --user USERNAME or --expiring-within.")
        if options["all"] and usernames:
            raise CommandError("--all and --user cannot be combined.")
        bare_profiles = Profile.objects.none()
        if usernames:
            found = set(
                get_user_model()
                .objects.filter(username__in=usernames)
                .values_list("username", flat=True)
            )
            missing = sorted(set(usernames) - found)
            if missing:
                raise CommandError(f"No such user: {', '.join(missing)}")
            tokens = XToken.objects.filter(profile__user__username__in=usernames)
            bare_profiles = Profile.objects.filter(
                user__username__in=usernames, tokens__isnull=True
            )
        else:
            tokens = jobs.live_tokens()
        if options["expiring_within"] is not None:
            tokens = tokens.expiring_within(timedelta(minutes=options["expiring_within"]))
            tokens = tokens.exclude(status__in=[TokenStatus.REVOKED, TokenStatus.INVALID])
            bare_profiles = Profile.objects.none()
        return tokens, bare_profiles

    def list_selection(self, action: str, tokens, bare_profiles, count: int) -> None:
        rows = tokens.select_related("profile__user").defer(*SECRET_COLUMNS)
        for token in rows.order_by("profile__user__username", "kind"):
            profile = token.profile
            self.stdout.write(
                f"  {profile.user.get_username()} @{profile.screen_name or '-'}: {token.masked}"
                f", {token.get_status_display().lower()}"
                + (f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "")
            )
        for profile in bare_profiles.select_related("user"):
            self.stdout.write(f"  {profile.user.get_username()}: no X token")
        self.stdout.write(f"{action} (dry run): {count} accounts would be processed.")

    # Running -----------------------------------------------------------------------------

    def run(self, job: BulkJob) -> bool:
        """Run the job here; True when every account ended ok."""
        stop = threading.Event()
        try:
            with jobs.stop_on_shutdown(stop):
                progress = jobs.run_job(job, on_progress=self.progress_bar(), stop=stop)
        except KeyboardInterrupt:
            progress = jobs.job_progress(job)
        self.report(job, progress)
        return progress.failed == 0 and progress.state == "done"

    def progress_bar(self):
        """A one-line bar on a terminal's stderr; nothing when cron captures the output."""
        if not self.stderr.isatty():
            return None

        def draw(ok: int, failed: int, total: int) -> None:
            done = ok + failed
            filled = BAR_WIDTH * done // total if total else BAR_WIDTH
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.stderr.write(
                f"\r[{bar}] {done}/{total} ({failed} failed)", ending="", style_func=str
            )
            if done == total:
                self.stderr.write("")

        return draw

    def report(self, job: BulkJob, progress: jobs.Progress) -> None:
        failed = BulkJobItem.objects.filter(job=job, status=ItemStatus.FAILED)
        for item in failed.order_by("pk")[:FAILURES_LISTED]:
            who = f"@{item.screen_name}" if item.screen_name else f"profile {item.profile_id}"
            kind = f" ({item.token_kind})" if item.token_kind else ""
            self.stderr.write(f"  {who}{kind}: {item.message}")
        if progress.failed > FAILURES_LISTED:
            self.stderr.write(f"  … and {progress.failed - FAILURES_LISTED} more on the job page.")
        summary = (
            f"{job.action}: {progress.total} accounts, {progress.ok} ok, "
            f"{progress.failed} failed (job #{job.pk})"
        )
        if progress.state != "done":
            summary += (
                f"; stopped with {progress.pending + progress.running} left: run `x_tokens resume`"
            )
        self.stdout.write(summary)

    def resume(self, job_ids: list[int], *, dry_run: bool) -> None:
        stalled = jobs.stalled_jobs()
        if job_ids:
            stalled = stalled.filter(pk__in=job_ids)
        stalled = list(stalled.order_by("pk"))
        if not stalled:
            self.stdout.write("resume: no stalled jobs.")
            return
        if dry_run:
            for job in stalled:
                self.stdout.write(f"  {job} (started by {job.created_by_label})")
            self.stdout.write(f"resume (dry run): {len(stalled)} stalled jobs would be resumed.")
            return
        all_ok = [self.run(job) for job in stalled]
        if not all(all_ok):
            sys.exit(1)
