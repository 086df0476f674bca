"""How fast do background jobs refresh OAuth 2.0 tokens on 1 and on 2 workers? Prints figures.

    .venv/bin/python bench/bulk_refresh.py [--tokens 10000] [--latency-ms 50] [--pool 16]
                                           [--workers 1,2]

Starts the X sandbox with a fixed latency on every call, adds N personas and has
it issue one OAuth 2.0 token pair to each (control API), stores them here the way
the site does (encrypted, via bulk_create). Then, once per worker count, it starts
that many `manage.py db_worker` processes exactly as `DB_WORKERS` makes gunicorn
start them (project/gunicorn.conf.py), with the site's production settings
(DEBUG=0), lets them sit idle as they would in production, and starts a refresh
job exactly as the admin's "select all" does: a BulkJob with one item per token,
enqueued on django-tasks. Every round refreshes all N tokens again. The job's own
timestamps (started_at .. finished_at) give the rate.

The database is a scratch one: a temporary SQLite file, or, when DATABASE_URL
points at PostgreSQL, a database created beside it and dropped at the end.

Figures, one column per worker count: tokens per second; the limit, workers x
pool size / latency (each thread can have one call to X in flight); their ratio
(target >= 0.8 with 2 workers on PostgreSQL); the workers' CPU time per token
(target <= 2.5 ms), idle polling included; the sandbox's CPU time per token and
how many cores the whole machine kept busy meanwhile (every process, ours or not:
when that reaches the core count, the rate is bounded by the machine, not by the
workers), with the CPU time all processes spent per token and the ratio the
machine would allow with every core busy at that cost (the ceiling for this
machine: PostgreSQL, the sandbox and the workers share its cores); and tokens
lost (target 0): a token is lost if its job item failed, its status is not
active, or X no longer honours the refresh token stored here (so it could not be
refreshed again). Last, the price of the rate: how many answers a worker killed
outright could lose (admin_ext.jobs.answers_at_risk). On SQLite refreshes run one
at a time (see admin_ext/jobs.py), so the ratio means little.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ScratchDatabase, cpu_reference_ms, prepare_site, site_environment  # noqa: E402
from tests.sandbox import SandboxControl, SandboxProcess  # noqa: E402

PERSONA_BATCH = 1000
TOKEN_PATH = "/2/oauth2/token"
# What project/gunicorn.conf.py runs for each of its DB_WORKERS.
DB_WORKER = [sys.executable, "manage.py", "db_worker", "--no-reload", "--queue-name", "*"]


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


def wait_for_job(job, workers: list[subprocess.Popen], timeout: float) -> None:
    from admin_ext import jobs

    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        job.refresh_from_db()
        if job.finished_at is not None:
            return
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit("a db_worker exited before the job finished")
        if time.monotonic() > deadline:
            raise SystemExit("the job did not finish in time")
        if time.monotonic() - last_report > 5:
            print(f"  … {jobs.job_progress(job).done} / {job.total}", flush=True)
            last_report = time.monotonic()
        time.sleep(0.2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy so far (Linux /proc/stat, idle and iowait out)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def count_lost(control: SandboxControl, job) -> tuple[int, int]:
    """(tokens lost, failed items), checked against X's own records."""
    from accounts.models import TokenStatus, XToken
    from admin_ext.models import ItemStatus

    report = control.http.get(control.base_url + "/_sandbox/tokens", timeout=120).json()
    live_refresh = {
        r["token"] for r in report["oauth2_refresh_tokens"] if not (r["spent"] or r["revoked"])
    }
    lost = 0
    for token in XToken.objects.all().iterator(chunk_size=1000):
        if token.status != TokenStatus.ACTIVE or token.refresh_token not in live_refresh:
            lost += 1
    failed = job.items.filter(status=ItemStatus.FAILED).count()
    return lost, failed


@dataclass
class Round:
    workers: int
    pool: int
    seconds: float
    worker_cpu: float
    sandbox_cpu: float
    busy_cores: float
    token_calls: int
    failed: int
    lost: int


def run_round(
    sandbox: SandboxProcess,
    control: SandboxControl,
    env: dict[str, str],
    workers: int,
    tokens: int,
    workdir: Path,
) -> Round:
    """Refresh every token once with `workers` db_workers running; the round's figures."""
    from admin_ext.jobs import pool_size_for

    with (workdir / f"workers-{workers}.log").open("w") as log:
        processes = [
            subprocess.Popen(DB_WORKER, cwd=ROOT, env=env, stdout=log, stderr=log)
            for _ in range(workers)
        ]
        try:
            time.sleep(3)  # started and idle, as they are when staff start a job
            cpu_before = sum(cpu_seconds(p.pid) for p in processes)
            sandbox_before = cpu_seconds(sandbox.pid)
            calls_before = len(control.calls())
            busy_before, wall_before = machine_busy_seconds(), time.monotonic()
            job = start_refresh_job()
            wait_for_job(job, processes, timeout=max(600, tokens / 5))
            busy_cores = (machine_busy_seconds() - busy_before) / (time.monotonic() - wall_before)
            worker_cpu = sum(cpu_seconds(p.pid) for p in processes) - cpu_before
            sandbox_cpu = cpu_seconds(sandbox.pid) - sandbox_before
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
    token_calls = sum(1 for call in control.calls()[calls_before:] if call["path"] == TOKEN_PATH)
    lost, failed = count_lost(control, job)
    return Round(
        workers=workers,
        pool=pool_size_for(job),
        seconds=(job.finished_at - job.started_at).total_seconds(),
        worker_cpu=worker_cpu,
        sandbox_cpu=sandbox_cpu,
        busy_cores=busy_cores,
        token_calls=token_calls,
        failed=failed,
        lost=lost,
    )


def print_table(rounds: list[Round], tokens: int, latency_ms: int) -> None:
    from admin_ext.jobs import answers_at_risk

    def row(label: str, values: list[str]) -> None:
        print(f"{label:<34}" + "".join(f"{value:>14}" for value in values))

    row("", [f"{r.workers} worker{'s' if r.workers > 1 else ''}" for r in rounds])
    row("tokens refreshed", [str(tokens) for _ in rounds])
    row("seconds (job started..finished)", [f"{r.seconds:.1f}" for r in rounds])
    rates = [tokens / r.seconds for r in rounds]
    limits = [r.workers * r.pool / (latency_ms / 1000) for r in rounds]
    row("rate (tokens/s)", [f"{rate:.1f}" for rate in rates])
    row("limit (workers x pool / latency)", [f"{limit:.1f}" for limit in limits])
    row(
        "ratio (target >= 0.8)",
        [f"{rate / limit:.2f}" for rate, limit in zip(rates, limits, strict=True)],
    )
    row("worker CPU ms/token (<= 2.5)", [f"{1000 * r.worker_cpu / tokens:.2f}" for r in rounds])
    row("X sandbox CPU ms/token", [f"{1000 * r.sandbox_cpu / tokens:.2f}" for r in rounds])
    row(
        f"busy cores, all processes (of {os.cpu_count()})",
        [f"{r.busy_cores:.2f}" for r in rounds],
    )
    # What every process together spent per token bounds the rate whatever the
    # workers do: at that cost, all cores busy refresh at most cores / cost per second.
    machine_ms = [1000 * r.busy_cores * r.seconds / tokens for r in rounds]
    row("machine CPU ms/token, all processes", [f"{ms:.2f}" for ms in machine_ms])
    row(
        "ratio with every core busy",
        [
            f"{os.cpu_count() * 1000 / ms / limit:.2f}"
            for ms, limit in zip(machine_ms, limits, strict=True)
        ],
    )
    row("X token calls (one per token)", [str(r.token_calls) for r in rounds])
    row("failed items", [str(r.failed) for r in rounds])
    row("tokens lost (target 0)", [str(r.lost) for r in rounds])
    row("answers a killed worker can lose", [str(answers_at_risk(r.pool)) for r in rounds])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--pool", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="worker counts to compare, e.g. 1,2")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    with (
        tempfile.TemporaryDirectory(prefix="bench-refresh-") as workdir,
        ScratchDatabase("refreshbench") as database,
        SandboxProcess(latency_ms=args.latency_ms) as sandbox,
    ):
        env = site_environment(
            database.url,
            Path(workdir),
            sandbox.base_url,
            ADMIN_EXT_POOL_SIZE=str(args.pool),
            LOG_LEVEL="WARNING",
        )
        prepare_site(env)
        os.environ.update(env)
        import django

        django.setup()
        control = SandboxControl(sandbox.base_url)

        started = time.monotonic()
        store_accounts(issue_tokens(control, args.tokens))
        setup_seconds = time.monotonic() - started
        print(f"setup: {args.tokens} tokens issued by X and stored in {setup_seconds:.1f} s")
        rounds = []
        for workers in counts:
            print(f"refreshing with {workers} db_worker(s) …", flush=True)
            rounds.append(run_round(sandbox, control, env, workers, args.tokens, Path(workdir)))

    print(f"database: {database.engine}; X latency: {args.latency_ms} ms; DEBUG=0")
    print(
        f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}; "
        f"CPU reference {cpu_reference_ms():.1f} ms"
    )
    print_table(rounds, args.tokens, args.latency_ms)
    if any(r.lost or r.failed for r in rounds):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
