"""Scale-out drill: two sites, three job workers, one PostgreSQL, a worker killed. Exits 1 on loss.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/xsignin \\
        .venv/bin/python bench/scale_out.py [--tokens 10000] [--latency-ms 50]

The many-machine layout of the README's "Deploying" section, on one machine:
two gunicorn sites (A and B, `project/gunicorn.conf.py`, `DB_WORKERS=0`, production
settings) and three `manage.py db_worker` processes (the job machines) on one
scratch PostgreSQL database created beside DATABASE_URL's and dropped at the end,
and the X sandbox answering every call after `--latency-ms`.

1. N people have signed in with X (OAuth 2.0 pairs issued by the sandbox, stored
   encrypted) and a staff member exists.
2. The staff member signs in to site A's admin over HTTP and posts the "Refresh
   tokens" action on the X tokens list with "select all", as a browser does.
3. They follow the job on site B (the job page's progress URL) until it is done.
   When a third of the tokens are done, one worker holding part of the job is
   killed with SIGKILL (a machine lost); at two thirds another is stopped with
   SIGTERM (a deploy). The third worker, and nothing else, finishes the job.
4. Every stored token is checked against X's own records (the sandbox control
   API's read-only token report: nothing is spent by looking) and the audit trail
   is read back.

Each token must end up in one of these:
- refreshed exactly once: X rotated its pair once and the new pair is stored;
- kept a working pair: not refreshed, and X still honours the stored pair;
- needs a new sign-in: the known gap no client can close. A refresh in flight
  when its worker is killed outright was answered by X (the old refresh token is
  spent) but the new pair died with the process; the account is marked for the
  person to sign in again. At most admin_ext.jobs.answers_at_risk (the exchanges
  the killed worker had sent and not yet stored: its pool's calls at X plus one
  round of answers waiting for their write, 24 for a pool of 16), counted and
  shown apart, never hidden.
Anything else (a token refreshed twice, a dead pair with no such explanation, an
account without exactly one audit line) is a loss, and the drill exits 1.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bulk_refresh import DB_WORKER, TOKEN_PATH, issue_tokens, store_accounts  # noqa: E402
from bench.common import (  # noqa: E402
    ScratchDatabase,
    prepare_site,
    site_environment,
    start_gunicorn,
)
from tests.sandbox import SandboxControl, SandboxProcess  # noqa: E402

STAFF_USER = "drill-ops"
STAFF_PASSWORD = "drill-ops-password-7c1f"
POOL_SIZE = 16
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FIRST_TOKEN_BOX = re.compile(r'name="_selected_action" value="(\d+)"')
JOB_LINK = re.compile(r"/admin/admin_ext/bulkjob/(\d+)/change/")


@dataclass
class Workers:
    """The job machines: db_worker processes started as gunicorn's DB_WORKERS would."""

    env: dict[str, str]
    log_path: Path
    processes: list[subprocess.Popen] = field(default_factory=list)
    killed: list[int] = field(default_factory=list)
    stopped: list[int] = field(default_factory=list)

    def start(self, count: int) -> None:
        with self.log_path.open("a") as log:
            for _ in range(count):
                self.processes.append(
                    subprocess.Popen(DB_WORKER, cwd=ROOT, env=self.env, stdout=log, stderr=log)
                )

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.processes if p.poll() is None]

    def signal_one_working_on(self, job_id: int, signum: int) -> int | None:
        """Send `signum` to a live worker that holds items of the job right now."""
        from admin_ext.models import BulkJobItem, ItemStatus

        holders = BulkJobItem.objects.filter(job_id=job_id, status=ItemStatus.RUNNING)
        # A runner's id is host-pid-random (admin_ext.jobs.new_worker_id).
        pids = {
            int(claim.rsplit("-", 2)[1])
            for claim in holders.values_list("claimed_by", flat=True).distinct()
        }
        for process in self.alive():
            if process.pid in pids:
                process.send_signal(signum)
                return process.pid
        return None

    def stop_all(self) -> None:
        for process in self.alive():
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def staff_session(site: str) -> requests.Session:
    """Sign the staff member in to the admin, as the login form does."""
    session = requests.Session()
    page = session.get(f"{site}/admin/login/", timeout=30)
    csrf = CSRF_INPUT.search(page.text).group(1)
    answer = session.post(
        f"{site}/admin/login/?next=/admin/",
        data={"username": STAFF_USER, "password": STAFF_PASSWORD, "csrfmiddlewaretoken": csrf},
        headers={"Origin": site, "Referer": f"{site}/admin/login/"},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 302:
        raise SystemExit(f"staff sign-in on {site} answered {answer.status_code}")
    return session


def start_refresh_of_everything(session: requests.Session, site: str) -> int:
    """Tick one box, click "Select all", pick "Refresh tokens", press Go: the job's id."""
    changelist = f"{site}/admin/accounts/xtoken/"
    page = session.get(changelist, timeout=60)
    answer = session.post(
        changelist,
        data={
            "csrfmiddlewaretoken": CSRF_INPUT.search(page.text).group(1),
            "action": "refresh_tokens",
            "select_across": "1",
            "index": "0",
            "_selected_action": FIRST_TOKEN_BOX.search(page.text).group(1),
        },
        headers={"Origin": site, "Referer": changelist},
        timeout=120,
    )
    # The action answers by taking the browser to the job's page.
    job = JOB_LINK.search(answer.url) or JOB_LINK.search(answer.text)
    if answer.status_code != 200 or job is None:
        raise SystemExit(f"the refresh action answered {answer.status_code} without a job link")
    return int(job.group(1))


def follow(session, site, job_id, workers: Workers, total: int, timeout: float) -> dict:
    """Poll the job's progress URL on `site`; kill one worker at 1/3, stop one at 2/3."""
    url = f"{site}/admin/admin_ext/bulkjob/{job_id}/progress/"
    deadline = time.monotonic() + timeout
    last_print = 0.0
    while time.monotonic() < deadline:
        answer = session.get(url, timeout=30)
        if answer.status_code != 200:
            raise SystemExit(f"progress on site B answered {answer.status_code}")
        progress = answer.json()
        if progress["state"] == "done":
            return progress
        disrupt(workers, job_id, progress["done"], total)
        if time.monotonic() - last_print > 5:
            print(f"  site B: {progress['done']} / {total} ({progress['state']})", flush=True)
            last_print = time.monotonic()
        time.sleep(0.1)
    raise SystemExit("the job did not finish in time")


def disrupt(workers: Workers, job_id: int, done: int, total: int) -> None:
    """SIGKILL a worker of the job once a third is done, SIGTERM another at two thirds."""
    if not workers.killed and done >= total / 3:
        signum, victims = signal.SIGKILL, workers.killed
    elif workers.killed and not workers.stopped and done >= 2 * total / 3:
        signum, victims = signal.SIGTERM, workers.stopped
    else:
        return
    if pid := workers.signal_one_working_on(job_id, signum):
        victims.append(pid)
        print(f"  {signal.Signals(signum).name} worker {pid} at {done} / {total}", flush=True)


@dataclass
class Verdict:
    refreshed_once: int = 0
    kept_working_pair: int = 0
    needs_sign_in: int = 0
    lost: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


def check_every_token(control: SandboxControl, originals: dict[str, str]) -> Verdict:
    """Classify each stored token by what X says of its refresh token (nothing spent)."""
    from accounts.models import XToken

    report = control.http.get(control.base_url + "/_sandbox/tokens", timeout=300).json()
    chains: dict[str, list[dict]] = defaultdict(list)
    for record in report["oauth2_refresh_tokens"]:
        chains[record["persona_id"]].append(record)
    verdict = Verdict()
    for token in XToken.objects.select_related("profile").iterator(chunk_size=1000):
        persona = token.profile.x_user_id
        chain = chains[persona]
        live = {r["token"] for r in chain if not (r["spent"] or r["revoked"])}
        stored, original = token.refresh_token, originals[persona]
        verdict.statuses[token.status] += 1
        if stored in live and stored != original and len(chain) == 2:
            verdict.refreshed_once += 1
        elif stored in live and stored == original and len(chain) == 1:
            verdict.kept_working_pair += 1
        elif stored == original and len(chain) == 2 and stored not in live:
            verdict.needs_sign_in += 1
        else:
            verdict.lost.append(
                f"@{token.profile.screen_name}: {len(chain)} refresh tokens issued by X, "
                f"the stored one {'live' if stored in live else 'dead'}"
            )
    return verdict


def check_audit(job_id: int, total: int) -> list[str]:
    from accounts.models import XToken
    from admin_ext.models import AuditEvent

    problems = []
    lines = Counter(AuditEvent.objects.filter(job_id=job_id).values_list("token_id", flat=True))
    if sum(lines.values()) != total:
        problems.append(f"{sum(lines.values())} audit lines for {total} tokens")
    missing = XToken.objects.exclude(pk__in=list(lines)).count()
    repeated = sum(1 for count in lines.values() if count != 1)
    if missing or repeated:
        problems.append(f"{missing} tokens without an audit line, {repeated} with several")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=50)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise SystemExit("the drill needs PostgreSQL: set DATABASE_URL=postgres://…")

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scale-out-")))
        database = stack.enter_context(ScratchDatabase("scaleout"))
        sandbox = stack.enter_context(SandboxProcess(latency_ms=args.latency_ms))
        env = site_environment(
            database.url,
            workdir,
            sandbox.base_url,
            DB_WORKERS="0",
            WEB_CONCURRENCY="2",
            GUNICORN_ACCESS_LOG="0",
            LOG_LEVEL="WARNING",
            ADMIN_EXT_POOL_SIZE=str(POOL_SIZE),
        )
        prepare_site(env)
        os.environ.update(env)
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        from admin_ext.jobs import answers_at_risk

        at_risk = answers_at_risk(POOL_SIZE)

        control = SandboxControl(sandbox.base_url)
        started = time.monotonic()
        issued = issue_tokens(control, args.tokens)
        store_accounts(issued)
        originals = {persona["id"]: body["refresh_token"] for persona, body in issued}
        get_user_model().objects.create_superuser(STAFF_USER, "", STAFF_PASSWORD)
        print(
            f"setup: {args.tokens} people signed in with X, in {time.monotonic() - started:.0f} s"
        )

        site_a = stack.enter_context(
            start_gunicorn(env, ["-c", "project/gunicorn.conf.py"], workdir / "site-a.log")
        )
        site_b = stack.enter_context(
            start_gunicorn(env, ["-c", "project/gunicorn.conf.py"], workdir / "site-b.log")
        )
        workers = Workers(env, workdir / "workers.log")
        stack.callback(workers.stop_all)
        workers.start(3)
        print(f"site A {site_a}, site B {site_b}, 3 db_workers, X latency {args.latency_ms} ms")

        job_started = time.monotonic()
        job_id = start_refresh_of_everything(staff_session(site_a), site_a)
        print(f"staff started job #{job_id} on site A; following it on site B")
        lease = float(env.get("ADMIN_EXT_CLAIM_LEASE", 60))
        progress = follow(
            staff_session(site_b),
            site_b,
            job_id,
            workers,
            args.tokens,
            600 + args.tokens / 5 + 3 * lease,
        )
        job_seconds = time.monotonic() - job_started
        survivors = len(workers.alive())
        workers.stop_all()

        calls = [c for c in control.calls() if c["path"] == TOKEN_PATH]
        answered = sum(1 for c in calls if c["status"] == 200)
        verdict = check_every_token(control, originals)
        audit_problems = check_audit(job_id, args.tokens)

    print(
        f"job #{job_id}: {progress['ok']} ok, {progress['failed']} failed, in {job_seconds:.1f} s"
    )
    print(f"workers: SIGKILL {workers.killed}, SIGTERM {workers.stopped}, {survivors} left")
    print(f"X token exchanges: {len(calls)} calls, {answered} answered with a new pair")
    print(f"refreshed exactly once:            {verdict.refreshed_once}")
    print(f"kept a working pair:               {verdict.kept_working_pair}")
    print(
        f"needs a new sign-in (answer lost in the killed worker): {verdict.needs_sign_in}"
        f" (at most {at_risk}: the killed worker's exchanges sent and not yet stored)"
    )
    print(f"token statuses: {dict(verdict.statuses)}")
    print(f"audit lines: {'one per token' if not audit_problems else '; '.join(audit_problems)}")
    print(f"lost: {len(verdict.lost)}")
    for line in verdict.lost[:20]:
        print(f"  {line}")
    failures = [
        *audit_problems,
        *(["tokens lost"] if verdict.lost else []),
        *(
            ["more answers lost than the killed worker had at risk"]
            if verdict.needs_sign_in > at_risk
            else []
        ),
        *(["no worker was killed"] if not workers.killed else []),
        *(["no worker was stopped"] if not workers.stopped else []),
        *(["job incomplete"] if progress["done"] != args.tokens else []),
    ]
    if failures:
        print("DRILL FAILED: " + "; ".join(failures))
        raise SystemExit(1)
    print("drill passed: nothing lost")


if __name__ == "__main__":
    main()
