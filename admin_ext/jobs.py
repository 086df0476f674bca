"""Bulk check / refresh / revoke: the one runner behind admin actions, tasks and x_tokens.

A job is created with its whole selection stored as items, then any number of
runners (a request, a django-tasks worker, the x_tokens command, on any machine)
process it by claiming small batches of items:
- claims use `select_for_update(skip_locked=True)`, so runners sharing a job on
  PostgreSQL never take the same item; on SQLite the IMMEDIATE transactions the
  settings configure serialise the claims instead;
- a claim is a lease that its runner renews every few seconds; when a runner dies,
  its items become claimable again after the lease and a resumed job does only
  the items not yet done;
- X is called from a bounded pool of threads (ADMIN_EXT_POOL_SIZE), each calling
  accounts.tokens, which holds the "never lose a token" rules; a refresh job's
  OAuth 2.0 tokens go out in rounds instead (accounts.tokens.refresh_batch: one
  lock and one write per round), with at most `answers_at_risk` exchanges sent
  and not yet stored;
- a 429 pauses the whole pool until X's reset time, then the same item is retried:
  rate limits delay a job, they never fail an account;
- finished items are written with their audit events a few times a second, in one
  transaction per batch; a runner killed outright leaves the items of its last
  fraction of a second claimed, and whoever takes them over does them again,
  except a refresh whose token was already refreshed since the job was created
  (the dead runner's exchange was stored): that one is recorded, not repeated;
- the per-account work is only the call itself: claims read the few columns a
  runner needs, an OAuth 2.0 refresh is handed its token by id (accounts.tokens
  reads it under the row lock anyway), and outcomes are written per kind of
  outcome, not per account (admin_ext.audit).
"""

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, connections, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts import tokens as token_ops
from accounts import x_client
from accounts.models import SECRET_COLUMNS, Profile, TokenKind, TokenStatus, XToken
from accounts.tokens import Outcome
from accounts.x_client import TokenGrant, XError, XRateLimited
from accounts.x_values import profile_text
from admin_ext.audit import Claimed, Finished, record_outcomes
from admin_ext.models import BulkJob, BulkJobItem, ItemStatus, JobSource, TokenAction

logger = logging.getLogger(__name__)

OPERATIONS: dict[str, Callable[[XToken], Outcome]] = {
    TokenAction.CHECK: token_ops.check_token,
    TokenAction.REFRESH: token_ops.refresh_token,
    TokenAction.REVOKE: token_ops.revoke_token,
}
HEARTBEAT_SECONDS = 5.0
# How often a pool's finished items are written: often enough for a live progress
# bar, rarely enough that each write carries many items.
RECORD_SECONDS = 0.25
ITEM_CHUNK = 2000
NO_TOKEN = Outcome(
    False, "", "No X token is stored for this account; it has not signed in with X."
)
ALREADY_REFRESHED = token_ops.ALREADY_REFRESHED_FOR_JOB
# How often a runner with nothing to claim looks again while a stopped runner's
# items wait for their lease to run out.
LINGER_SECONDS = 1.0


def claim_lease() -> timedelta:
    """How long a claim (and a job heartbeat) stays valid without being renewed."""
    return timedelta(seconds=settings.ADMIN_EXT_CLAIM_LEASE)


# Creating jobs -------------------------------------------------------------------


def create_job(
    action: str,
    tokens: QuerySet[XToken],
    *,
    profiles_without_tokens: QuerySet[Profile] | None = None,
    actor: AbstractBaseUser | None = None,
    actor_label: str = "",
    source: str = JobSource.ADMIN,
    run_in_background: bool = False,
) -> BulkJob:
    """Store the job and its whole selection, one item per token, before any work starts.

    Profiles with no token get an item too, so the job and the audit trail say
    plainly that nothing could be done for them instead of silently skipping them.
    """
    with transaction.atomic():
        job = BulkJob.objects.create(
            action=action,
            source=source,
            created_by=actor,
            created_by_label=actor_label or (actor.get_username() if actor else "system"),
            run_in_background=run_in_background,
        )
        rows = tokens.order_by("pk").values_list(
            "pk", "profile_id", "kind", "profile__screen_name"
        )
        total = _add_items(
            job,
            (
                BulkJobItem(
                    job=job,
                    token_id=pk,
                    profile_id=profile_id,
                    token_kind=kind,
                    screen_name=_shown_screen_name(name),
                )
                for pk, profile_id, kind, name in rows.iterator(chunk_size=ITEM_CHUNK)
            ),
        )
        if profiles_without_tokens is not None:
            bare = profiles_without_tokens.order_by("pk").values_list("pk", "screen_name")
            total += _add_items(
                job,
                (
                    BulkJobItem(job=job, profile_id=pk, screen_name=_shown_screen_name(name))
                    for pk, name in bare.iterator(chunk_size=ITEM_CHUNK)
                ),
            )
        job.total = total
        job.save(update_fields=["total"])
    return job


def _shown_screen_name(stored: str) -> str:
    # Read with values_list, past Profile.from_db: a row stored before values from
    # X were cleaned must not carry its control characters into the job's pages.
    return profile_text("screen_name", stored)


def _add_items(job: BulkJob, items) -> int:
    added = 0
    batch: list[BulkJobItem] = []
    for item in items:
        batch.append(item)
        if len(batch) == ITEM_CHUNK:
            added += len(BulkJobItem.objects.bulk_create(batch))
            batch = []
    if batch:
        added += len(BulkJobItem.objects.bulk_create(batch))
    return added


# Progress --------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    total: int
    ok: int
    failed: int
    pending: int
    running: int
    state: str

    @property
    def done(self) -> int:
        return self.ok + self.failed

    def as_dict(self) -> dict[str, int | str]:
        return {
            "total": self.total,
            "ok": self.ok,
            "failed": self.failed,
            "pending": self.pending,
            "running": self.running,
            "done": self.done,
            "state": self.state,
        }


def job_progress(job: BulkJob) -> Progress:
    """Counts from the items themselves, so every runner's work shows up at once."""
    counts = BulkJobItem.objects.filter(job_id=job.pk).aggregate(
        total=Count("pk"),
        ok=Count("pk", filter=Q(status=ItemStatus.OK)),
        failed=Count("pk", filter=Q(status=ItemStatus.FAILED)),
        pending=Count("pk", filter=Q(status=ItemStatus.PENDING)),
        running=Count("pk", filter=Q(status=ItemStatus.RUNNING)),
    )
    return Progress(**counts, state=job_state(job))


def job_state(job: BulkJob) -> str:
    """done, queued (no runner yet), running, or stalled (its runner stopped beating)."""
    if job.finished_at is not None:
        return "done"
    if job.started_at is None:
        return "queued"
    if job.heartbeat_at and job.heartbeat_at > timezone.now() - claim_lease():
        return "running"
    return "stalled"


def stalled_jobs() -> QuerySet[BulkJob]:
    return BulkJob.objects.filter(
        finished_at__isnull=True,
        started_at__isnull=False,
        heartbeat_at__lt=timezone.now() - claim_lease(),
    )


def has_work_to_share(job: BulkJob) -> bool:
    """Whether more items are pending than one runner claims at a time."""
    pending = BulkJobItem.objects.filter(job_id=job.pk, status=ItemStatus.PENDING)
    return pending[: pool_size_for(job) + 1].count() > pool_size_for(job)


def finish_if_complete(job: BulkJob) -> bool:
    """Mark the job finished once no item is left; safe when several runners race here."""
    open_items = BulkJobItem.objects.filter(
        job_id=job.pk, status__in=[ItemStatus.PENDING, ItemStatus.RUNNING]
    )
    if open_items.exists():
        return False
    BulkJob.objects.filter(pk=job.pk, finished_at__isnull=True).update(finished_at=timezone.now())
    return True


# Claiming --------------------------------------------------------------------------


def claim_items(
    job: BulkJob, worker_id: str, size: int, *, token_kind: str | None = None
) -> list[Claimed]:
    """Take up to `size` pending items, topped up with items whose runner's lease ran out.

    Two plain queries rather than one with an OR, so each is an index range scan
    and a claim costs the same at the first item of a job as at the ten-thousandth.
    The locking queries read the columns the runner needs, so no third query
    loads the items. `token_kind` takes only the items of that kind of token.
    """
    now = timezone.now()
    items = BulkJobItem.objects.filter(job_id=job.pk).order_by("pk")
    if token_kind is not None:
        items = items.filter(token_kind=token_kind, token__isnull=False)
    with transaction.atomic():
        rows = _lock(items.filter(status=ItemStatus.PENDING), size)
        pending = len(rows)
        if pending < size:
            # Another runner's: this one's own items are in its lanes or queue.
            stale = items.filter(
                status=ItemStatus.RUNNING, claimed_at__lt=now - claim_lease()
            ).exclude(claimed_by=worker_id)
            rows += _lock(stale, size - pending)
        if not rows:
            return []
        BulkJobItem.objects.filter(pk__in=[row[0] for row in rows]).update(
            status=ItemStatus.RUNNING, claimed_by=worker_id, claimed_at=now
        )
    return [Claimed(*row, taken_over=index >= pending) for index, row in enumerate(rows)]


CLAIMED_COLUMNS = ("pk", "token_id", "profile_id", "token_kind", "screen_name")


def _lock(items: QuerySet[BulkJobItem], limit: int) -> list[tuple]:
    locked = items.select_for_update(skip_locked=True).values_list(*CLAIMED_COLUMNS)
    return list(locked[:limit])


def release_items(items: list[Claimed], worker_id: str) -> None:
    """Give unstarted items back at once, rather than leaving them to the lease."""
    BulkJobItem.objects.filter(
        pk__in=[item.pk for item in items], claimed_by=worker_id, status=ItemStatus.RUNNING
    ).update(status=ItemStatus.PENDING, claimed_by="", claimed_at=None)


def others_hold_items(job: BulkJob, worker_id: str, silent_for: float = 0.0) -> bool:
    """Whether other runners hold items of the job whose claim has not been renewed
    for `silent_for` seconds (a live runner renews its claims every heartbeat)."""
    silent_since = timezone.now() - timedelta(seconds=silent_for)
    return (
        BulkJobItem.objects.filter(
            job_id=job.pk, status=ItemStatus.RUNNING, claimed_at__lte=silent_since
        )
        .exclude(claimed_by=worker_id)
        .exists()
    )


# Rate limits -------------------------------------------------------------------------


class RateLimitGate:
    """When X answers 429, every thread of the job waits for the window, not just one.

    Each wait is capped (ADMIN_EXT_MAX_RATE_LIMIT_WAIT) so a wrong reset header
    cannot park a job for hours; after the cap the item is simply tried again.
    X's reset is in whole seconds, so one second is added to avoid retrying early.
    """

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait
        self._reopens_at = 0.0
        self._lock = threading.Lock()

    def close_for(self, error: XRateLimited) -> None:
        wait = min(error.seconds_to_wait() + 1.0, self.max_wait)
        with self._lock:
            self._reopens_at = max(self._reopens_at, time.monotonic() + wait)
        logger.warning("X rate limit hit; pausing this job's calls for %.0f s", wait)

    def wait(self, stop: threading.Event) -> bool | None:
        """Block until calls may go out: whether it had to wait, or None if the job
        is being stopped meanwhile."""
        waited = False
        while (remaining := self._reopens_at - time.monotonic()) > 0:
            waited = True
            if stop.wait(min(remaining, 1.0)):
                return None
        return None if stop.is_set() else waited


# Running ---------------------------------------------------------------------------


def _refreshed_by_id(item: Claimed) -> bool:
    return bool(item.token_id) and item.token_kind == TokenKind.OAUTH2 and not item.taken_over


ProgressCallback = Callable[[int, int, int], None]


def run_job(
    job: BulkJob,
    *,
    pool_size: int | None = None,
    on_progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
) -> Progress:
    """Process every claimable item of the job, then report where the whole job stands.

    `on_progress(ok, failed, total)` is called every so often (the command's progress
    bar). Setting `stop` makes the runner finish the calls in flight, give back the
    items it has not started, and return; the job can be resumed later.
    """
    runner = _Runner(job, pool_size or pool_size_for(job), on_progress, stop)
    runner.run()
    finish_if_complete(job)
    job.refresh_from_db(fields=["started_at", "heartbeat_at", "finished_at"])
    return job_progress(job)


def round_size(pool_size: int) -> int:
    """How many OAuth 2.0 tokens a refresh round locks, exchanges and stores at once."""
    return max(1, pool_size // 2)


def rounds_at_x(pool_size: int) -> int:
    """How many rounds may be between their first call to X and their commit.

    One more than the pool holds: while a round waits for its last answers and its
    write, the next is already at X, so the pool's threads stay busy.
    """
    return pool_size // round_size(pool_size) + 1


def answers_at_risk(pool_size: int) -> int:
    """The most refresh answers a runner killed outright can lose.

    X spends a refresh token when it answers; an answer not yet committed dies with
    the process, and its account needs a new sign-in. That is every token of the
    rounds between their first call and their commit: the calls at X (the pool) and
    the answers of one round waiting for their write. A pool of one refreshes one
    token at a time, without rounds.
    """
    if pool_size < 2:
        return pool_size
    return rounds_at_x(pool_size) * round_size(pool_size)


def pool_size_for(job: BulkJob) -> int:
    """ADMIN_EXT_POOL_SIZE, except for SQLite refreshes and revokes: those hold the
    database's single write lock while they talk to X, so a second thread would
    only queue for the lock (and SQLite's busy waiting makes such a queue slow)."""
    serialised = connection.vendor == "sqlite" and job.action != TokenAction.CHECK
    return 1 if serialised else settings.ADMIN_EXT_POOL_SIZE


@contextmanager
def stop_on_shutdown(stop: threading.Event) -> Iterator[None]:
    """Make SIGTERM/SIGINT stop the job at once, then pass the signal on.

    db_worker answers SIGTERM by finishing its current task before exiting, and a
    big job can take an hour: a deploy would either wait that long or kill the
    worker with exchanges in flight (X spends a refresh token before we can store
    its successor). Instead the calls in flight finish and are recorded, the rest
    is handed back, and the next runner carries on. Only the main thread may set
    signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handle(signum, frame) -> None:
        stop.set()
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _runs_inline() -> bool:
    """Pool threads have their own database connections, which cannot see what the
    caller has not committed yet, and an in-memory SQLite database (tests) cannot be
    shared safely between connections: in both cases the caller's thread does the work."""
    if connection.in_atomic_block:
        return True
    return connection.vendor == "sqlite" and connection.is_in_memory_db()


def new_worker_id() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Runner:
    """One runner on one job: a feeder (the calling thread) and a pool of callers.

    The feeder claims items, loads the tokens that need loading in one query per
    batch, hands them to the threads, and writes what they finished in batches;
    the threads only call accounts.tokens. When nothing is left to claim but
    another runner seems to have died holding items, the feeder waits for that
    runner's lease to run out and takes them over, so a job finishes without
    waiting for its watchdog.
    """

    def __init__(
        self,
        job: BulkJob,
        pool_size: int,
        on_progress: ProgressCallback | None,
        stop: threading.Event | None,
    ) -> None:
        self.job = job
        self.operation = OPERATIONS[job.action]
        self.pool_size = max(1, pool_size)
        self.on_progress = on_progress
        self.stop = stop or threading.Event()
        self.worker_id = new_worker_id()
        self.gate = RateLimitGate(settings.ADMIN_EXT_MAX_RATE_LIMIT_WAIT)
        self.todo: queue.Queue[tuple[Claimed, XToken | None] | None] = queue.Queue(
            maxsize=self.pool_size
        )
        self.finished: queue.Queue[Finished] = queue.Queue()
        self.last_beat = self.last_record = 0.0
        self.ran_out_at: float | None = None
        self.record_every = RECORD_SECONDS
        start = job_progress(job)
        self.ok, self.failed, self.total = start.ok, start.failed, start.total

    def run(self) -> None:
        now = timezone.now()
        BulkJob.objects.filter(pk=self.job.pk, started_at__isnull=True).update(started_at=now)
        self._beat()
        try:
            if _runs_inline():
                self.record_every = 0.0  # one item at a time: record each at once
                self._run_inline()
            else:
                self._run_pool()
        finally:
            self._record_finished()
            self._report()

    def _claim(self) -> list[tuple[Claimed, XToken | None]]:
        items = claim_items(self.job, self.worker_id, self.pool_size)
        by_id: dict[int, XToken] = {}
        tokens = XToken.objects.select_related("profile")
        if self.job.action == TokenAction.REFRESH:
            # An OAuth 2.0 refresh reads its token under the row lock: reading it
            # here too would be a second lookup per account, so it is handed over
            # by id. Items taken over from a stopped runner are read, to see whether
            # that runner refreshed them already; OAuth 1.0a "refresh" re-verifies.
            for item in items:
                if _refreshed_by_id(item):
                    by_id[item.token_id] = XToken(
                        pk=item.token_id, profile_id=item.profile_id, kind=TokenKind.OAUTH2
                    )
            to_read = [i.token_id for i in items if i.token_id and i.token_id not in by_id]
            oauth2 = tokens.filter(kind=TokenKind.OAUTH2).defer(*SECRET_COLUMNS)
            by_id |= oauth2.in_bulk(to_read)
            by_id |= tokens.exclude(kind=TokenKind.OAUTH2).in_bulk(to_read)
        else:
            by_id = tokens.in_bulk([item.token_id for item in items if item.token_id])
        return [(item, by_id.get(item.token_id)) for item in items]

    def _run_inline(self) -> None:
        while not self.stop.is_set():
            batch = self._claim()
            if not batch:
                return
            for index, (item, token) in enumerate(batch):
                if self.stop.is_set():
                    release_items([item for item, _ in batch[index:]], self.worker_id)
                    return
                self._process(item, token)
                self._tick()

    def _run_pool(self) -> None:
        if self.job.action == TokenAction.REFRESH and self.pool_size > 1:
            self._run_refresh_rounds()
        self._run_threads()

    def _run_threads(self) -> None:
        threads = [
            threading.Thread(target=self._work, name=f"bulk-job-{self.job.pk}-{n}", daemon=True)
            for n in range(self.pool_size)
        ]
        for thread in threads:
            thread.start()
        try:
            self._feed()
        except BaseException:
            # Ctrl-C or a database error in the feeder: let the calls in flight
            # finish and give everything else back, then re-raise.
            self.stop.set()
            raise
        finally:
            if self.stop.is_set():
                self._release_queued()
            for _ in threads:
                self.todo.put(None)
            self._join(threads)

    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for the threads, recording what they finish meanwhile."""
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.2)
                self._tick()

    def _run_refresh_rounds(self) -> None:
        """Refresh the job's OAuth 2.0 tokens in rounds, the rest is left to the threads.

        A thread per account spent a third of its time (py-spy) on its own three
        round trips to the database (lock, store, commit), each waiting its turn
        for a core and for the interpreter. Here a few lanes each lock a round of
        tokens in one query, have the pool's threads make the round's calls to X,
        and store the new pairs in one statement and one COMMIT.

        The pool's threads still bound the calls at X at once. `exchanging` bounds
        the rounds between their first call and their commit (`rounds_at_x`). With
        only as many rounds as the pool holds, each round kept its places from its
        first call until its commit, about 62 ms for X's 50, and two workers
        reached 0.71-0.77 of the pool's limit; with one round more, 0.92. The
        price is what a runner killed outright can lose: `answers_at_risk`, the
        pool plus one round, against the pool alone. The extra lane locks its
        next round meanwhile.
        """
        size = round_size(self.pool_size)
        exchanging = threading.BoundedSemaphore(rounds_at_x(self.pool_size))
        with ThreadPoolExecutor(
            max_workers=self.pool_size, thread_name_prefix=f"bulk-job-{self.job.pk}-x"
        ) as calls:
            lanes = [
                threading.Thread(
                    target=self._lane,
                    args=(calls, exchanging, size),
                    name=f"bulk-job-{self.job.pk}-lane-{n}",
                    daemon=True,
                )
                for n in range(rounds_at_x(self.pool_size) + 1)
            ]
            for lane in lanes:
                lane.start()
            try:
                self._join(lanes)
            except BaseException:
                # Ctrl-C: the rounds at X finish and are stored, then re-raise.
                self.stop.set()
                self._join(lanes)
                raise

    def _lane(self, calls: Executor, exchanging: threading.Semaphore, size: int) -> None:
        """Claim and refresh rounds of OAuth 2.0 items until none is left to claim.

        Items a stopped runner left claimed are not waited for here: the threads
        that run after the lanes take them over.
        """
        held: list[Claimed] = []
        try:
            while not self.stop.is_set():
                if len(held) < size:
                    # Two rounds at a time: half the claims, and still a short tail
                    # when the runners of a job run out of items.
                    held += claim_items(
                        self.job, self.worker_id, 2 * size - len(held), token_kind=TokenKind.OAUTH2
                    )
                if not held:
                    return
                held = self._refresh_round(held[:size], calls, exchanging) + held[size:]
            release_items(held, self.worker_id)
        except Exception:
            # Database trouble: the lane's items stay claimed and are taken over
            # when the lease runs out, as a thread's are.
            logger.exception("Bulk job %s: a refresh lane stopped", self.job.pk)
            self.stop.set()
        finally:
            connections.close_all()

    def _refresh_round(
        self, held: list[Claimed], calls: Executor, exchanging: threading.Semaphore
    ) -> list[Claimed]:
        """Lock, exchange and store one round; the items X rate-limited, to try again."""
        if self.gate.wait(self.stop) is None:
            return held
        by_token = {item.token_id: item for item in held}
        done_since = {item.token_id: self.job.created_at for item in held if item.taken_over}
        finished: list[Finished] = []
        sent = False
        try:
            with token_ops.refresh_batch(list(by_token), done_since=done_since) as batch:
                finished += [
                    Finished(item, NO_TOKEN)
                    for token_id, item in by_token.items()
                    if token_id not in batch.locked
                ]
                if batch.to_exchange:
                    exchanging.acquire()
                    sent = True
                    finished += self._exchange(batch, by_token, calls)
                finished += [
                    Finished(by_token[pk], outcome) for pk, outcome in batch.outcomes.items()
                ]
        finally:
            if sent:
                exchanging.release()
        for item in finished:
            self.finished.put(item)
        for limited in batch.rate_limited.values():
            self.gate.close_for(limited)
        return [by_token[token_id] for token_id in batch.rate_limited]

    def _exchange(
        self, batch: token_ops.RefreshBatch, by_token: dict[int, Claimed], calls: Executor
    ) -> list[Finished]:
        """Send the round's refresh tokens to X at once; settle each answer in the batch.

        An error that is not X's (a bug, an answer we cannot read) leaves its token
        as it was and fails its item, like a thread's unexpected error.
        """
        answers = {
            calls.submit(_exchange_at_x, refresh_token): token_id
            for token_id, refresh_token in batch.to_exchange.items()
        }
        unexpected = []
        # Settled as they come in: only the write is left when the last one does.
        for future in as_completed(answers):
            token_id, answer = answers[future], future.result()
            if isinstance(answer, TokenGrant | XError):
                batch.settle(token_id, answer)
                continue
            logger.error(
                "Bulk job %s: refresh failed on item %s",
                self.job.pk,
                by_token[token_id].pk,
                exc_info=answer,
            )
            status = batch.locked[token_id].status
            unexpected.append(Finished(by_token[token_id], _unexpected(answer, status)))
        return unexpected

    def _feed(self) -> None:
        while not self.stop.is_set():
            batch = self._claim()
            if not batch:
                if not self._others_may_have_died():
                    return
                self._pause(LINGER_SECONDS)
                continue
            self.ran_out_at = None
            for index, work in enumerate(batch):
                if not self._hand_over(work):
                    release_items([item for item, _ in batch[index:]], self.worker_id)
                    return

    def _hand_over(self, work: tuple[BulkJobItem, XToken | None]) -> bool:
        while not self.stop.is_set():
            try:
                self.todo.put(work, timeout=0.2)
            except queue.Full:
                self._tick()
            else:
                self._tick()
                return True
        return False

    def _others_may_have_died(self) -> bool:
        """Whether to wait for items other runners hold rather than leave now.

        Claims renewed lately belong to a live runner, which will finish them;
        claims silent for two heartbeats belong to a runner that has most likely
        died, and are taken over when its lease runs out. Right after running out
        of work a runner cannot tell yet, so it watches for two heartbeats first.
        """
        now = time.monotonic()
        self.ran_out_at = self.ran_out_at or now
        learning = now - self.ran_out_at < 2 * HEARTBEAT_SECONDS + LINGER_SECONDS
        silent_for = 0.0 if learning else 2 * HEARTBEAT_SECONDS
        return others_hold_items(self.job, self.worker_id, silent_for)

    def _pause(self, seconds: float) -> None:
        """Wait, still recording, beating and answering `stop`."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and time.monotonic() < deadline:
            self.stop.wait(0.2)
            self._tick()

    def _release_queued(self) -> None:
        leftovers = []
        while True:
            try:
                work = self.todo.get_nowait()
            except queue.Empty:
                break
            if work is not None:
                leftovers.append(work[0])
        if leftovers:
            release_items(leftovers, self.worker_id)

    def _work(self) -> None:
        try:
            while (work := self.todo.get()) is not None:
                self._process(*work)
        except Exception:
            # Database trouble: this thread's items stay claimed and are taken
            # over when the lease runs out; the job is not silently finished.
            logger.exception("Bulk job %s: a runner thread stopped", self.job.pk)
            self.stop.set()
        finally:
            connections.close_all()

    def _process(self, item: Claimed, token: XToken | None) -> None:
        if outcome := self._done_already(item, token):
            self.finished.put(Finished(item, outcome))
            return
        fresh = True
        while True:
            waited = self.gate.wait(self.stop)
            if waited is None:
                release_items([item], self.worker_id)
                return
            if token is not None and (waited or not fresh):
                # After a pause the copy loaded with the batch may be stale.
                token = XToken.objects.select_related("profile").filter(pk=token.pk).first()
            if token is None:
                outcome = NO_TOKEN
                break
            try:
                outcome = self.operation(token)
                break
            except XRateLimited as limited:
                self.gate.close_for(limited)
                fresh = False
            except XToken.DoesNotExist:
                outcome = NO_TOKEN  # deleted since the claim (a person disconnected X)
                break
            except Exception as error:
                logger.exception(
                    "Bulk job %s: %s failed on item %s", self.job.pk, self.job.action, item.pk
                )
                outcome = _unexpected(error, token.status)
                break
        self.finished.put(Finished(item, outcome))

    def _done_already(self, item: Claimed, token: XToken | None) -> Outcome | None:
        """A taken-over refresh whose token was refreshed since the job was created:
        the stopped runner's exchange was stored, and doing it again would only
        spend one more refresh token at X."""
        if not (item.taken_over and self.job.action == TokenAction.REFRESH and token):
            return None
        refreshed = token.last_refreshed_at
        if token.kind != TokenKind.OAUTH2 or not refreshed or refreshed < self.job.created_at:
            return None
        return Outcome(True, token.status, ALREADY_REFRESHED, 200)

    def _tick(self) -> None:
        now = time.monotonic()
        if now - self.last_record >= self.record_every:
            self._record_finished()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self._beat()

    def _record_finished(self) -> None:
        batch = []
        while True:
            try:
                batch.append(self.finished.get_nowait())
            except queue.Empty:
                break
        self.last_record = time.monotonic()
        if not batch:
            return
        recorded = record_outcomes(self.job, batch)
        done_ok = sum(1 for record in recorded if record.ok)
        self.ok += done_ok
        self.failed += len(recorded) - done_ok
        self._report()

    def _report(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.ok, self.failed, self.total)

    def _beat(self) -> None:
        """Tell other runners and the job page that this runner and its claims are alive."""
        now = timezone.now()
        BulkJob.objects.filter(pk=self.job.pk).update(heartbeat_at=now)
        BulkJobItem.objects.filter(
            job_id=self.job.pk, claimed_by=self.worker_id, status=ItemStatus.RUNNING
        ).update(claimed_at=now)
        self.last_beat = time.monotonic()


def _exchange_at_x(refresh_token: str) -> TokenGrant | Exception:
    """One refresh at X, in a pool thread: its answer, or what it raised."""
    try:
        return x_client.refresh_oauth2(refresh_token)
    except Exception as error:
        return error


def _unexpected(error: BaseException, status: str) -> Outcome:
    return Outcome(
        False,
        status,
        f"Unexpected error ({type(error).__name__}); details are in the server log.",
    )


# Selections shared by the admin and the command ---------------------------------------


def tokens_of_profiles(profiles: QuerySet[Profile]) -> QuerySet[XToken]:
    return XToken.objects.filter(profile__in=profiles.values("pk"))


def profiles_without_tokens(profiles: QuerySet[Profile]) -> QuerySet[Profile]:
    return Profile.objects.filter(pk__in=profiles.values("pk"), tokens__isnull=True)


def live_tokens() -> QuerySet[XToken]:
    """Every token worth acting on in bulk: revoked ones hold no secret any more."""
    return XToken.objects.exclude(status=TokenStatus.REVOKED)
