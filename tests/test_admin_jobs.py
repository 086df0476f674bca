"""The bulk job runner: every account done once, outcomes recorded, 429s waited out, resumable."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from urllib.parse import quote

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from accounts import tokens as token_ops
from accounts.models import Profile, TokenKind, TokenStatus, XToken
from admin_ext import jobs
from admin_ext.models import AuditEvent, BulkJob, BulkJobItem, ItemStatus, TokenAction
from admin_ext.tasks import start_job
from tests.sandbox import PROJECT_ROOT
from tests.test_admin_support import (
    refresh_token_is_live,
    sign_in,
    sign_in_many,
    staff_user,
    token_calls,
)
from tests.test_dashboard_tallies import assert_dashboard_matches_a_recount

TOKEN_PATH = "/2/oauth2/token"
User = get_user_model()
needs_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several connections working one job need PostgreSQL (the SQLite test "
    "database lives in memory, visible to one connection only)",
)


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    return x_sandbox


def refresh_job(tokens, **options) -> BulkJob:
    selection = XToken.objects.filter(pk__in=[t.pk for t in tokens])
    return jobs.create_job(TokenAction.REFRESH, selection, **options)


def background_refresh_job(tokens) -> BulkJob:
    """A refresh of `tokens` started as the admin starts one: handed to the workers."""
    return start_job(TokenAction.REFRESH, XToken.objects.filter(pk__in=[t.pk for t in tokens]))


def all_refreshed_once(x_sandbox, tokens) -> bool:
    for token in tokens:
        stored = XToken.objects.get(pk=token.pk)
        if stored.refresh_token == token.refresh_token:
            return False
        if not refresh_token_is_live(x_sandbox, stored.refresh_token):
            return False
    return True


@pytest.mark.django_db
def test_job_refreshes_each_account_and_records_every_outcome(x_sandbox):
    staff = staff_user("ops", "accounts.refresh_token")
    tokens = sign_in_many(x_sandbox, 4)
    never_signed_in = staff_user("no-x").x_profile
    profiles = Profile.objects.filter(pk__in=[t.profile_id for t in tokens] + [never_signed_in.pk])
    job = jobs.create_job(
        TokenAction.REFRESH,
        jobs.tokens_of_profiles(profiles),
        profiles_without_tokens=jobs.profiles_without_tokens(profiles),
        actor=staff,
    )

    progress = jobs.run_job(job)

    assert (progress.total, progress.ok, progress.failed, progress.state) == (5, 4, 1, "done")
    assert all_refreshed_once(x_sandbox, tokens)
    assert token_calls(x_sandbox, TOKEN_PATH) == 4
    failed = BulkJobItem.objects.get(job=job, status=ItemStatus.FAILED)
    assert failed.profile_id == never_signed_in.pk and "No X token" in failed.message
    events = AuditEvent.objects.filter(job=job)
    assert events.count() == 5
    assert set(events.values_list("actor_label", "action")) == {("ops", "refresh")}
    assert events.filter(outcome="ok", http_status=200).count() == 4
    assert not LogEntry.objects.exists(), "the admin logs the job it starts, not each account"


@pytest.mark.django_db
def test_refresh_job_reverifies_oauth1_and_rotates_oauth2(x_sandbox):
    oauth1 = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    oauth2 = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.update_persona("grace_hopper", followers_count=1906)

    progress = jobs.run_job(refresh_job([oauth1, oauth2]))

    assert (progress.ok, progress.failed) == (2, 0)
    assert Profile.objects.get(pk=oauth1.profile_id).followers_count == 1906
    assert XToken.objects.get(pk=oauth1.pk).access_token == oauth1.access_token
    assert all_refreshed_once(x_sandbox, [oauth2])


@pytest.mark.django_db
def test_rate_limited_account_waits_for_x_reset_then_succeeds(x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    # The sandbox stamps a 429 with reset = its clock + 15 min; with its clock 898 s
    # behind ours that reset is two seconds away.
    x_sandbox.advance_clock(-898)
    x_sandbox.fault(TOKEN_PATH, status=429)
    job = refresh_job([token])

    started = time.monotonic()
    progress = jobs.run_job(job)
    waited = time.monotonic() - started

    assert (progress.ok, progress.failed) == (1, 0)
    assert [c["status"] for c in x_sandbox.calls() if c["path"] == TOKEN_PATH] == [429, 200]
    assert waited >= 1.5, "the retry went out before X's reset time"
    assert all_refreshed_once(x_sandbox, [token])


@pytest.mark.django_db
def test_rate_limit_wait_is_capped_and_the_account_retried_not_failed(x_sandbox, settings):
    settings.ADMIN_EXT_MAX_RATE_LIMIT_WAIT = 1
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    x_sandbox.fault(TOKEN_PATH, status=429, times=2)  # reset 15 minutes away, twice

    progress = jobs.run_job(refresh_job([token]))

    assert (progress.ok, progress.failed) == (1, 0)
    assert token_calls(x_sandbox, TOKEN_PATH) == 3


@pytest.mark.django_db
def test_interrupted_job_resumes_with_only_the_accounts_not_done(x_sandbox, settings):
    tokens = sign_in_many(x_sandbox, 6)
    job = refresh_job(tokens)
    stop = threading.Event()

    def stop_after_two(ok: int, failed: int, total: int) -> None:
        if ok + failed >= 2:
            stop.set()

    first = jobs.run_job(job, on_progress=stop_after_two, stop=stop)

    assert (first.ok, first.pending, first.state) == (2, 4, "running")
    settings.ADMIN_EXT_CLAIM_LEASE = 0  # time passes: the runner's heartbeat is now old
    assert jobs.job_state(BulkJob.objects.get(pk=job.pk)) == "stalled"
    assert list(jobs.stalled_jobs()) == [job]

    second = jobs.run_job(BulkJob.objects.get(pk=job.pk))

    assert (second.ok, second.failed, second.state) == (6, 0, "done")
    assert token_calls(x_sandbox, TOKEN_PATH) == 6, "no account was refreshed twice"
    assert AuditEvent.objects.filter(job=job).count() == 6
    assert all_refreshed_once(x_sandbox, tokens)


@pytest.mark.django_db
def test_items_claimed_by_a_dead_runner_are_taken_over_once_its_lease_runs_out(
    x_sandbox, settings
):
    tokens = sign_in_many(x_sandbox, 5)
    job = refresh_job(tokens)
    jobs.claim_items(job, "worker-that-crashed", 2)

    partial = jobs.run_job(job)

    assert (partial.ok, partial.running, partial.state) != (5, 0, "done")
    assert (partial.ok, partial.running) == (3, 2), "live claims are left alone"
    settings.ADMIN_EXT_CLAIM_LEASE = 0
    final = jobs.run_job(BulkJob.objects.get(pk=job.pk))
    assert (final.ok, final.state) == (5, "done")
    assert token_calls(x_sandbox, TOKEN_PATH) == 5


# The worker closes connections left outside autocommit, so no test transaction here.
@pytest.mark.django_db(transaction=True)
def test_job_enqueued_for_the_workers_is_run_by_db_worker(x_sandbox):
    tokens = sign_in_many(x_sandbox, 3)
    job = background_refresh_job(tokens)
    assert jobs.job_state(job) == "queued"

    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)

    job.refresh_from_db()
    assert jobs.job_progress(job).as_dict()["ok"] == 3 and job.is_finished
    assert all_refreshed_once(x_sandbox, tokens)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_two_runners_share_one_job_without_doing_any_account_twice(x_sandbox):
    x_sandbox.config(latency_ms=20)
    tokens = sign_in_many(x_sandbox, 40)
    job = refresh_job(tokens)
    results = []

    def runner() -> None:
        results.append(jobs.run_job(BulkJob.objects.get(pk=job.pk), pool_size=4))
        connection.close()

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    claimed_by = set(BulkJobItem.objects.filter(job=job).values_list("claimed_by", flat=True))
    assert len(claimed_by) == 2, "both runners took part"
    assert token_calls(x_sandbox, TOKEN_PATH) == 40
    assert jobs.job_progress(job).ok == 40
    assert AuditEvent.objects.filter(job=job).count() == 40
    assert all_refreshed_once(x_sandbox, tokens)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_pool_hitting_429s_pauses_and_fails_no_account(x_sandbox):
    tokens = sign_in_many(x_sandbox, 12)
    x_sandbox.advance_clock(-898)  # X's 15-minute reset lands two seconds from now
    x_sandbox.fault(TOKEN_PATH, status=429, times=3)

    progress = jobs.run_job(refresh_job(tokens), pool_size=4)

    assert (progress.ok, progress.failed) == (12, 0)
    statuses = [c["status"] for c in x_sandbox.calls() if c["path"] == TOKEN_PATH]
    assert sorted(statuses) == [200] * 12 + [429] * 3
    assert all_refreshed_once(x_sandbox, tokens)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_refresh_rounds_store_every_new_pair_and_keep_a_refused_one_as_it_was(x_sandbox, client):
    """OAuth 2.0 refreshes go out in rounds (one lock, one write): an answer X
    refuses in a round keeps that token's pair and costs no other token its new
    one; OAuth 1.0a tokens and accounts without a token are still done, once each."""
    oauth2 = sign_in_many(x_sandbox, 7)
    oauth1 = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    never_signed_in = staff_user("no-x").x_profile
    profiles = Profile.objects.filter(
        pk__in=[t.profile_id for t in [*oauth2, oauth1]] + [never_signed_in.pk]
    )
    x_sandbox.update_persona("grace_hopper", followers_count=1906)
    x_sandbox.fault(TOKEN_PATH, status=503)
    job = jobs.create_job(
        TokenAction.REFRESH,
        jobs.tokens_of_profiles(profiles),
        profiles_without_tokens=jobs.profiles_without_tokens(profiles),
    )

    progress = jobs.run_job(job, pool_size=4)

    assert (progress.ok, progress.failed, progress.state) == (7, 2, "done")
    assert token_calls(x_sandbox, TOKEN_PATH) == 7, "one exchange per OAuth 2.0 token"
    refused = XToken.objects.get(status=TokenStatus.ERROR)
    before = next(t for t in oauth2 if t.pk == refused.pk)
    assert (refused.access_token, refused.refresh_token) == (
        before.access_token,
        before.refresh_token,
    )
    assert refresh_token_is_live(x_sandbox, refused.refresh_token)
    assert all_refreshed_once(x_sandbox, [t for t in oauth2 if t.pk != refused.pk])
    assert Profile.objects.get(pk=oauth1.profile_id).followers_count == 1906
    failures = dict(
        BulkJobItem.objects.filter(job=job, status=ItemStatus.FAILED).values_list(
            "token_id", "message"
        )
    )
    assert "X answered 503" in failures[refused.pk]
    assert "No X token" in failures[None]
    assert AuditEvent.objects.filter(job=job).count() == 9
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-unused-1"))
    assert_dashboard_matches_a_recount(client)


def worker_environment(x_sandbox) -> dict[str, str]:
    """A db_worker's environment: this test database, the sandbox, a small pool."""
    db = connection.settings_dict
    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{login}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "X_API_BASE_URL": x_sandbox.base_url,
        "X_WEB_BASE_URL": x_sandbox.base_url,
        "ADMIN_EXT_POOL_SIZE": "2",
        "ADMIN_EXT_CLAIM_LEASE": "2",
    }


WORKER = [
    sys.executable,
    "manage.py",
    "db_worker",
    "--no-reload",
    "--no-startup-delay",
    "--interval",
    "0.2",
]


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_stopped_worker_hands_the_job_back_and_nothing_is_lost_or_redone(x_sandbox):
    """SIGTERM (a deploy, a restart): the worker stops within moments instead of
    finishing a long job, the next worker completes it, every account exactly once."""
    x_sandbox.config(latency_ms=100)
    tokens = sign_in_many(x_sandbox, 40)
    job = background_refresh_job(tokens)
    env = worker_environment(x_sandbox)

    first = subprocess.Popen(WORKER, cwd=PROJECT_ROOT, env=env)
    try:
        wait_for(lambda: jobs.job_progress(job).done >= 6, "the first worker to make progress")
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=10)
    finally:
        first.kill()
    stopped = jobs.job_progress(job)
    assert stopped.failed == 0 and stopped.running == 0
    assert 0 < stopped.pending < 40, "the rest was handed back, not kept claimed"

    second = subprocess.Popen(WORKER, cwd=PROJECT_ROOT, env=env)
    try:
        wait_for(lambda: BulkJob.objects.get(pk=job.pk).is_finished, "the job to finish")
    finally:
        second.terminate()
        second.wait(timeout=30)

    assert (jobs.job_progress(job).ok, token_calls(x_sandbox, TOKEN_PATH)) == (40, 40)
    assert all_refreshed_once(x_sandbox, tokens)


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_job_is_finished_by_the_next_worker(x_sandbox):
    """SIGKILL mid-job: the next worker finishes exactly the accounts not yet done.

    The one thing no client can save is an exchange in flight at the kill: X has
    spent that refresh token and the new pair died with the process. At most
    `jobs.answers_at_risk` accounts are in that window (3 for a pool of 2); they
    end up marked invalid (sign in again) with X's reason and their profile kept,
    never silently wrong.
    """
    x_sandbox.config(latency_ms=100)
    tokens = sign_in_many(x_sandbox, 40)
    job = background_refresh_job(tokens)
    env = worker_environment(x_sandbox)

    first = subprocess.Popen(WORKER, cwd=PROJECT_ROOT, env=env)
    try:
        wait_for(lambda: jobs.job_progress(job).done >= 8, "the first worker to make progress")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    done_before_crash = dict(
        BulkJobItem.objects.filter(job=job, status=ItemStatus.OK).values_list("pk", "finished_at")
    )
    assert len(done_before_crash) < 40 and not BulkJob.objects.get(pk=job.pk).is_finished

    second = subprocess.Popen(WORKER, cwd=PROJECT_ROOT, env=env)
    try:
        wait_for(lambda: BulkJob.objects.get(pk=job.pk).is_finished, "the job to finish")
    finally:
        second.terminate()
        second.wait(timeout=30)

    final = jobs.job_progress(job)
    assert final.ok + final.failed == 40 and final.failed <= jobs.answers_at_risk(2)
    audited = Counter(AuditEvent.objects.filter(job=job).values_list("token_id", flat=True))
    assert len(audited) == 40 and set(audited.values()) == {1}
    # Items recorded before the kill were not redone; only the dead runner's claimed
    # batch, queue and calls in flight (at most 3 x pool size) could be.
    still = dict(
        BulkJobItem.objects.filter(pk__in=done_before_crash).values_list("pk", "finished_at")
    )
    assert still == done_before_crash
    assert token_calls(x_sandbox, TOKEN_PATH) - 40 <= 6
    for item in BulkJobItem.objects.filter(job=job).select_related("token__profile"):
        if item.status == ItemStatus.OK:
            assert refresh_token_is_live(x_sandbox, item.token.refresh_token)
        else:
            assert "X answered 400" in item.message
            assert item.token.status == TokenStatus.INVALID
            assert item.token.profile.screen_name == item.screen_name
            assert item.pk not in done_before_crash


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize(
    "pool_size",
    [
        pytest.param(None, marks=pytest.mark.django_db, id="one-at-a-time"),
        pytest.param(
            4,
            marks=[needs_postgresql, pytest.mark.django_db(transaction=True)],
            id="refresh-rounds",
        ),
    ],
)
def test_a_taken_over_refresh_already_stored_is_recorded_not_exchanged_again(
    x_sandbox, settings, pool_size
):
    """A runner killed after storing a new pair but before recording its item: the
    runner taking the item over records it, and X is not asked a second time."""
    tokens = sign_in_many(x_sandbox, 4)
    job = refresh_job(tokens)
    dead_runners_items = jobs.claim_items(job, "worker-that-crashed", 2)
    for item in dead_runners_items:
        token_ops.refresh_token(XToken.objects.get(pk=item.token_id))
    settings.ADMIN_EXT_CLAIM_LEASE = 0

    progress = jobs.run_job(BulkJob.objects.get(pk=job.pk), pool_size=pool_size)

    assert (progress.ok, progress.failed, progress.state) == (4, 0, "done")
    assert token_calls(x_sandbox, TOKEN_PATH) == 4, "each account exchanged once"
    assert all_refreshed_once(x_sandbox, tokens)
    taken_over = BulkJobItem.objects.filter(pk__in=[item.pk for item in dead_runners_items])
    assert {item.message for item in taken_over} == {jobs.ALREADY_REFRESHED}
    assert AuditEvent.objects.filter(job=job, outcome="ok").count() == 4


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_every_running_worker_takes_part_in_a_job_enqueued_once(x_sandbox):
    x_sandbox.config(latency_ms=100)
    tokens = sign_in_many(x_sandbox, 40)
    job = background_refresh_job(tokens)
    # A long lease puts the watchdog copy of the task two minutes away: only the
    # job's own invitation can bring the second worker in.
    env = {**worker_environment(x_sandbox), "ADMIN_EXT_CLAIM_LEASE": "60"}

    workers = [subprocess.Popen(WORKER, cwd=PROJECT_ROOT, env=env) for _ in range(2)]
    try:
        wait_for(lambda: BulkJob.objects.get(pk=job.pk).is_finished, "the job to finish")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)

    runners = set(BulkJobItem.objects.filter(job=job).values_list("claimed_by", flat=True))
    pids = {runner.rsplit("-", 2)[1] for runner in runners}
    assert pids == {str(worker.pid) for worker in workers}, "both workers refreshed tokens"
    assert token_calls(x_sandbox, TOKEN_PATH) == 40
    assert AuditEvent.objects.filter(job=job).count() == 40
    assert all_refreshed_once(x_sandbox, tokens)
