"""Production logs: one JSON line per request and per X call, and never a secret.

The leak test drives everything that handles secrets -- both sign-in dances
through the site, a replayed callback, a bulk refresh -- with every chatty
library logger at DEBUG (oauthlib logs signatures and parameters there), and
looks for each secret the sandbox ever issued in what the site's handler wrote.
"""

import io
import json
import logging

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts import x_client
from accounts.models import TokenKind, XToken
from admin_ext.jobs import create_job, run_job
from admin_ext.models import TokenAction
from project.logging import JsonFormatter, redact
from tests.test_foundation import PRODUCTION_ENV, run_manage
from tests.test_signin_flows import OAUTH1, OAUTH2, consent, follow_callback, sign_in, start

CHATTY_LOGGERS = [
    "",
    "django",
    "django.request",
    "django.db.backends",
    "urllib3",
    "requests_oauthlib",
    "oauthlib",
    "allauth",
    "accounts",
    "admin_ext",
    "project.request",
]


@pytest.fixture
def site_log():
    """What the site's own console handler writes, as JSON, with everything at DEBUG."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    stream = io.StringIO()
    previous_stream = handler.setStream(stream)
    previous_formatter = handler.formatter
    handler.setFormatter(JsonFormatter())
    levels = {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield stream
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    handler.setFormatter(previous_formatter)
    handler.setStream(previous_stream)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def x(x_sandbox, settings):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    x_sandbox.config(callbacks=["http://testserver:*"])
    return x_sandbox


@pytest.mark.django_db
def test_each_request_is_one_json_line_without_query_string(client, site_log):
    staff = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw-unused")
    client.force_login(staff)

    client.get("/admin/?q=oauth_verifier-lookalike")

    (entry,) = [e for e in lines(site_log) if e["logger"] == "project.request"]
    assert entry["method"] == "GET"
    assert entry["path"] == "/admin/"
    assert entry["status"] == 200
    assert entry["user_id"] == str(staff.pk)
    assert isinstance(entry["duration_ms"], float)
    assert "lookalike" not in site_log.getvalue()


@pytest.mark.django_db
def test_anonymous_request_logs_no_user(client, site_log):
    client.get("/healthz")
    (entry,) = [e for e in lines(site_log) if e["logger"] == "project.request"]
    assert (entry["path"], entry["status"], entry["user_id"]) == ("/healthz", 200, None)


def test_each_x_call_is_one_json_line(x, site_log):
    issued = x.issue_tokens("ada_lovelace", "oauth1")[0]

    x_client.verify_credentials(issued["oauth_token"], issued["oauth_token_secret"])

    (entry,) = [e for e in lines(site_log) if e["logger"] == "accounts.x_client"]
    assert entry["x_method"] == "GET"
    assert entry["x_path"] == "/1.1/account/verify_credentials.json"
    assert entry["x_status"] == 200
    assert entry["duration_ms"] > 0


@pytest.mark.django_db
def test_sign_ins_and_bulk_refresh_never_put_a_secret_in_the_log(x, site_log):
    sign_in(Client(), OAUTH1, "ada_lovelace")
    sign_in(Client(), OAUTH2, "grace_hopper")
    replayer = Client()
    callback = consent(start(replayer, OAUTH1), "private_pat")
    follow_callback(replayer, callback)
    follow_callback(replayer, callback)  # a replayed callback is refused and logged
    cancelled = Client()
    follow_callback(cancelled, consent(start(cancelled, OAUTH2), decision="deny"))
    assert XToken.objects.filter(kind=TokenKind.OAUTH2).exists()

    job = create_job(TokenAction.REFRESH, XToken.objects.all(), actor_label="test")
    progress = run_job(job)
    assert progress.ok == XToken.objects.count()

    text = site_log.getvalue()
    secrets = x.secrets()
    assert len(secrets) >= 10
    assert [s for s in secrets if s in text] == []
    loggers = {entry["logger"] for entry in lines(site_log)}
    # The libraries that would leak were really talking, and got scrubbed.
    assert {"oauthlib.oauth1.rfc5849", "requests_oauthlib.oauth1_auth"} <= loggers
    assert {"accounts.x_client", "project.request", "urllib3.connectionpool"} <= loggers
    assert "[redacted]" in text


def test_exception_text_is_redacted_too(site_log):
    try:
        raise ValueError("callback failed: /cb?oauth_token=Tk9x2&oauth_verifier=Vf8q1")
    except ValueError:
        logging.getLogger("accounts").exception("sign-in broke")
    (entry,) = lines(site_log)
    assert "Tk9x2" not in entry["exception"] and "Vf8q1" not in entry["exception"]
    assert "ValueError" in entry["exception"]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /accounts/twitter/login/callback/?oauth_token=T0k&oauth_verifier=v3r", "v3r"),
        ("GET /cb?state=s7a7e&code=c0d3", "s7a7e"),
        ("GET /cb?state=s7a7e&code=c0d3", "c0d3"),
        ("Obtained token {'oauth_token': 'T0k', 'oauth_token_secret': 'S3cr'}", "S3cr"),
        ('{"access_token": "AcC3ss", "refresh_token": "R3fr", "expires_in": 7200}', "R3fr"),
        ("Collected params: [('oauth_verifier', 'v3r'), ('oauth_token', 'T0k')]", "v3r"),
        ("base string GET&u&oauth_nonce%3D1%26oauth_token%3D1000-abc%26x%3D1", "1000-abc"),
        ('OAuth oauth_nonce="1", oauth_signature="sIg%3D", oauth_token="T0k"', "sIg%3D"),
        ("headers {'Authorization': 'Bearer eyJ0eXAi.Zm9v'}", "eyJ0eXAi.Zm9v"),
        ("Basic c2FuZGJveC1jbGllbnQ6c2VjcmV0", "c2FuZGJveC1jbGllbnQ6c2VjcmV0"),
        ("unexpected value 1000000001-0f3a9c77e2d94b1c8a5e in prose", "0f3a9c77e2d94b1c8a5e"),
        ("token_urlsafe looks like xK3_9fLq0zPp-7QmWnaBcZ", "xK3_9fLq0zPp-7QmWnaBcZ"),
    ],
)
def test_redact_removes_secret_values(text, secret):
    assert secret not in redact(text)


@pytest.mark.parametrize(
    "text",
    [
        "X GET /1.1/account/verify_credentials.json -> 200 in 23.1ms",
        "Job 0f8c5a3e-1b2c-4d5e-8f90-123456789abc finished: 12 ok, 0 failed",
        "File /work/main/.venv/lib/python3.11/site-packages/django/core/handlers/base.py",
        "XFrameOptionsMiddleware refused verify_credentials_and_more",
        'violates unique constraint "socialaccount_socialaccount_provider_uid_fc810c6e_uniq"',
    ],
)
def test_redact_keeps_ordinary_text(text):
    assert redact(text) == text


def test_production_settings_log_json_through_the_filter():
    code = (
        "import logging;"
        "logging.getLogger('accounts').warning('callback /cb?oauth_verifier=V3rIf13r&x=1')"
    )
    result = run_manage("shell", "--no-imports", "-c", code, env=PRODUCTION_ENV)
    assert result.stdout == ""
    entry = json.loads(result.stderr.strip().splitlines()[-1])
    assert entry["level"] == "WARNING" and entry["logger"] == "accounts"
    assert entry["message"] == "callback /cb?oauth_verifier=[redacted]&x=1"
