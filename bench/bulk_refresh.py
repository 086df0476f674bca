"""How fast does a background job refresh OAuth 2.0 tokens, and is any lost? Prints figures.

    .venv/bin/python bench/bulk_refresh.py [--tokens 10000] [--latency-ms 50] [--pool 16]

Starts the X sandbox with a fixed latency on every call, adds N personas and has
it issue one OAuth 2.0 token pair to each (control API), stores them here the way
the site does (encrypted, via bulk_create), then starts a refresh job exactly as
the admin's "select all" does: a BulkJob with one item per token, enqueued on
django-tasks and run by a real `manage.py db_worker` process. The job's own
timestamps (started_at .. finished_at) give the rate.

The database is a scratch one: a temporary SQLite file, or, when DATABASE_URL
points at PostgreSQL, a database created beside it and dropped at the end.

Figures: tokens per second; the limit, pool size / latency (each thread can have
one call to X in flight); their ratio (target >= 0.7); and tokens lost (target 0):
a token is lost if its job item failed, its status is not active, or X no longer
honours the refresh token stored here (so it could not be refreshed again).
"""

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ScratchDatabase  # noqa: E402
from tests.sandbox import SandboxControl, SandboxProcess  # noqa: E402

PERSONA_BATCH = 1000


def issue_tokens(control: SandboxControl, count: int) -> list[tuple[dict, dict]]:
    """N new personas on X, each with one OAuth 2.0 token pair: [(persona, token body)]."""
    personas = []
    for start in range(0, count, PERSONA_BATCH):
        batch = [
            {"screen_name": f"bench{n:06d}", "name": f"Bench {n}"}
            for n in range(start, min(count, start + PERSONA_BATCH))
        ]
        personas += control.add_personas(batch)

    def issue(persona: dict) -> tuple[dict, dict]:
        own = SandboxControl(control.base_url)  # one keep-alive session per thread
        return persona, own.issue_tokens(persona["screen_name"], "oauth2")[0]

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(issue, personas, chunksize=250))


def store_accounts(issued: list[tuple[dict, dict]]) -> None:
    """Users, profiles and encrypted tokens, in bulk, as if each had signed in."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from accounts.models import Profile, TokenKind, XToken

    user_model = get_user_model()
    users = user_model.objects.bulk_create(
        [user_model(username=persona["screen_name"]) for persona, _ in issued], batch_size=1000
    )
    profiles = Profile.objects.bulk_create(
        [
            Profile(
                user=user,
                x_user_id=persona["id"],
                screen_name=persona["screen_name"],
                name=persona["name"],
                sign_in_method=TokenKind.OAUTH2,
            )
            for user, (persona, _) in zip(users, issued, strict=True)
        ],
        batch_size=1000,
    )
    tokens = []
    for profile, (_, body) in zip(profiles, issued, strict=True):
        token = XToken(
            profile=profile,
            kind=TokenKind.OAUTH2,
            scopes=body["scope"],
            expires_at=timezone.now() + timedelta(seconds=body["expires_in"]),
        )
        token.set_secrets(body["access_token"], "", body["refresh_token"])
        tokens.append(token)
    XToken.objects.bulk_create(tokens, batch_size=1000)


def start_refresh_job():
    """What the admin's 'select all' + refresh_tokens does: items up front, then a task."""
    from accounts.models import XToken
    from admin_ext import jobs
    from admin_ext.models import TokenAction
    from admin_ext.tasks import enqueue_job

    job = jobs.create_job(
        TokenAction.REFRESH,
        XToken.objects.all(),
        actor_label="bench/bulk_refresh.py",
        run_in_background=True,
    )
    enqueue_job(job)
    return job


def wait_for_job(job, worker: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        job.refresh_from_db()
        if job.finished_at is not None:
            return
        if worker.poll() is not None:
            raise SystemExit(f"db_worker exited with {worker.returncode} before the job finished")
        if time.monotonic() > deadline:
            raise SystemExit("the job did not finish in time")
        if time.monotonic() - last_report > 5:
            from admin_ext import jobs

            print(f"  … {jobs.job_progress(job).done} / {job.total}", flush=True)
            last_report = time.monotonic()
        time.sleep(0.5)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_lost(control: SandboxControl, job) -> tuple[int, int]:
    """(tokens lost, failed items), checked against X's own records."""
    import requests

    from accounts.models import TokenStatus, XToken
    from admin_ext.models import ItemStatus

    report = requests.get(control.base_url + "/_sandbox/tokens", timeout=120).json()
    live_refresh = {
        r["token"] for r in report["oauth2_refresh_tokens"] if not (r["spent"] or r["revoked"])
    }
    lost = 0
    for token in XToken.objects.all().iterator(chunk_size=1000):
        if token.status != TokenStatus.ACTIVE or token.refresh_token not in live_refresh:
            lost += 1
    failed = job.items.filter(status=ItemStatus.FAILED).count()
    return lost, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--pool", type=int, default=16)
    args = parser.parse_args()

    with (
        ScratchDatabase("refreshbench") as database,
        SandboxProcess(latency_ms=args.latency_ms) as sandbox,
    ):
        env = {
            **os.environ,
            "DATABASE_URL": database.url,
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "X_API_BASE_URL": sandbox.base_url,
            "X_WEB_BASE_URL": sandbox.base_url,
            "ADMIN_EXT_POOL_SIZE": str(args.pool),
            "LOG_LEVEL": "WARNING",
        }
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        control = SandboxControl(sandbox.base_url)

        started = time.monotonic()
        issued = issue_tokens(control, args.tokens)
        store_accounts(issued)
        setup_seconds = time.monotonic() - started
        print(f"setup: {args.tokens} tokens issued by X and stored in {setup_seconds:.1f} s")

        job = start_refresh_job()
        calls_before = len(control.calls())
        worker = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--no-reload",
                "--no-startup-delay",
                "--interval",
                "0.1",
                "--verbosity",
                "0",
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            wait_for_job(job, worker, timeout=max(600, args.tokens / 5))
            worker_cpu = cpu_seconds(worker.pid)
        finally:
            worker.terminate()
            worker.wait(timeout=60)

        from admin_ext.jobs import pool_size_for

        pool = pool_size_for(job)  # SQLite refreshes run one at a time: see jobs.py
        elapsed = (job.finished_at - job.started_at).total_seconds()
        refresh_calls = sum(
            1 for call in control.calls()[calls_before:] if call["path"] == "/2/oauth2/token"
        )
        lost, failed = count_lost(control, job)

    rate = args.tokens / elapsed
    limit = pool / (args.latency_ms / 1000)
    print(f"database: {database.engine}; pool: {pool} threads; X latency: {args.latency_ms} ms")
    print(f"refreshed: {args.tokens} tokens in {elapsed:.1f} s through one db_worker")
    print(f"worker CPU: {worker_cpu:.1f} s ({1000 * worker_cpu / args.tokens:.2f} ms per token)")
    print(f"X token calls: {refresh_calls} (one per token expected)")
    print(f"rate: {rate:.1f} tokens/s")
    print(f"limit: {limit:.1f} tokens/s (pool size / latency)")
    print(f"ratio: {rate / limit:.2f} (target >= 0.7)")
    print(f"failed items: {failed}")
    print(f"tokens lost: {lost} (target 0)")


if __name__ == "__main__":
    main()
