"""Helpers shared by the admin, token and x_tokens tests (this module holds no tests).

Accounts are made the way the site makes them: X (the sandbox) issues real
tokens, `accounts.tokens.store_token` stores them encrypted, and the profile
carries the persona's X id and screen name.
"""

import re
from html import unescape

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from accounts.models import Profile, TokenKind, XToken
from accounts.tokens import store_token
from admin_ext import jobs
from admin_ext.models import BulkJob
from tests.sandbox import SandboxControl

OAUTH2_SCOPE = "tweet.read users.read offline.access"
BUILTIN_IDS = {
    "ada_lovelace": "1000000001",
    "grace_hopper": "1000000002",
    "private_pat": "1000000003",
    "formula_fred": "1000000004",
    "hostile_harry": "1000000005",
}


def sign_in(
    x_sandbox: SandboxControl,
    screen_name: str = "ada_lovelace",
    kind: str = TokenKind.OAUTH2,
    *,
    x_user_id: str = "",
    scope: str = OAUTH2_SCOPE,
) -> XToken:
    """A user whose profile holds a live token X issued for `screen_name`."""
    issued = x_sandbox.issue_tokens(screen_name, kind, scope=scope)[0]
    user = get_user_model().objects.create_user(screen_name, f"{screen_name}@example.com")
    profile = user.x_profile
    profile.screen_name = screen_name
    profile.x_user_id = x_user_id or issued.get("user_id") or BUILTIN_IDS.get(screen_name)
    profile.sign_in_method = kind
    profile.save()
    return _store(profile, kind, issued)


def sign_in_many(x_sandbox: SandboxControl, count: int, prefix: str = "user") -> list[XToken]:
    """`count` new personas on X, each signed in here with an OAuth 2.0 token."""
    names = [f"{prefix}{n:05d}" for n in range(count)]
    personas = x_sandbox.add_personas([{"screen_name": name} for name in names])
    tokens = []
    for persona in personas:
        tokens.append(sign_in(x_sandbox, persona["screen_name"], x_user_id=persona["id"]))
    return tokens


def _store(profile: Profile, kind: str, issued: dict) -> XToken:
    if kind == TokenKind.OAUTH1:
        return store_token(
            profile,
            kind,
            access_token=issued["oauth_token"],
            token_secret=issued["oauth_token_secret"],
        )
    return store_token(
        profile,
        kind,
        access_token=issued["access_token"],
        refresh_token=issued.get("refresh_token", ""),
        expires_in=issued.get("expires_in"),
        scopes=issued.get("scope", ""),
    )


def staff_user(username: str = "staff", *perms: str):
    """A staff member with view access to profiles and tokens plus `perms` (app.codename)."""
    user = get_user_model().objects.create_user(username, password="irrelevant-pw-123")
    user.is_staff = True
    user.save()
    wanted = ["accounts.view_profile", "accounts.view_xtoken", *perms]
    for name in wanted:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return get_user_model().objects.get(pk=user.pk)


def sandbox_report(x_sandbox: SandboxControl) -> dict:
    """Everything X issued, with spent/revoked flags (GET /_sandbox/tokens)."""
    response = x_sandbox.http.get(x_sandbox.base_url + "/_sandbox/tokens", timeout=60)
    response.raise_for_status()
    return response.json()


def refresh_token_is_live(x_sandbox: SandboxControl, refresh_token: str) -> bool:
    """X still honours this refresh token: the account can be refreshed again."""
    report = sandbox_report(x_sandbox)["oauth2_refresh_tokens"]
    return any(r["token"] == refresh_token and not (r["spent"] or r["revoked"]) for r in report)


def access_token_is_live(x_sandbox: SandboxControl, access_token: str) -> bool:
    report = sandbox_report(x_sandbox)
    oauth2 = report["oauth2_access_tokens"]
    oauth1 = report["oauth1_access_tokens"]
    return any(r["token"] == access_token and not r["revoked"] for r in oauth2 + oauth1)


def token_calls(x_sandbox: SandboxControl, path: str) -> int:
    return sum(1 for call in x_sandbox.calls() if call["path"] == path)


def run_queued_jobs() -> None:
    """What the workers do with the bulk jobs the admin queued: run each with the job
    runner, here (inside a test's transaction too, where db_worker would close the
    connection; tests of the task itself run db_worker)."""
    for job in BulkJob.objects.filter(finished_at__isnull=True).order_by("pk"):
        jobs.run_job(job)


def job_summary(client, job) -> str:
    """The one-line outcome a finished job's page shows (its text, tags stripped)."""
    html = client.get(job.get_admin_url()).content.decode()
    found = re.search(r'<p id="job-summary"[^>]*>(.*?)</p>', html, re.S)
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""
