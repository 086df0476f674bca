"""The project skeleton: settings from the environment, production safety, setup commands."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "k" * 20 + "Zq8#pL2@vN5$wR7^tY1&uI4*oP6(aS3)dF9_gH0-jK",
    "ALLOWED_HOSTS": "signin.example.com",
    "TOKEN_ENCRYPTION_KEYS": "3yqT4cVqVJ5tQh3uRCAnNq8xv8K0V1QwQhV3k7pY7Ds=",
    "X_CONSUMER_KEY": "ck",
    "X_CONSUMER_SECRET": "cs",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # The test run's own switches (async-unsafe for Playwright, the settings module)
    # are not part of the environment being checked.
    ignored = {*PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    clean = {k: v for k, v in os.environ.items() if k not in ignored}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy_with_no_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_debug_off_without_secret_key_refuses_with_one_line():
    env = {**PRODUCTION_ENV}
    del env["SECRET_KEY"]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Refusing to start: SECRET_KEY is not set and DEBUG is off; set SECRET_KEY."
    ]


def test_debug_off_without_token_keys_refuses():
    env = {**PRODUCTION_ENV}
    del env["TOKEN_ENCRYPTION_KEYS"]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "TOKEN_ENCRYPTION_KEYS is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_database_url_selects_postgresql():
    code = (
        "from django.conf import settings; d = settings.DATABASES['default'];"
        "print(d['ENGINE'], d['NAME'], d['HOST'])"
    )
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        code,
        env={"DATABASE_URL": "postgres://someone@db.internal:5432/signin"},
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "signin", "db.internal"]


def test_collectstatic_writes_hashed_compressed_files(tmp_path):
    result = run_manage(
        "collectstatic", "--noinput", env={**PRODUCTION_ENV, "STATIC_ROOT": str(tmp_path)}
    )
    assert result.returncode == 0, result.stderr
    css = [p.name for p in (tmp_path / "css").iterdir()]
    assert any(name.startswith("site.") and name.endswith(".css.gz") for name in css), css
    assert (tmp_path / "staticfiles.json").exists()


@pytest.mark.django_db
def test_home_page_shows_site_and_sign_in_link(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sign in with X" in html
    assert '<meta name="viewport"' in html


@pytest.mark.django_db
def test_demo_staff_is_created_once_with_a_generated_password(capsys):
    call_command("ensure_demo_staff")
    first = capsys.readouterr().out
    User = get_user_model()
    staff = User.objects.get(username="demo-staff")
    assert staff.is_staff and staff.is_superuser
    password = first.split("password ")[1].split("'")[1]
    assert len(password) >= 16
    assert staff.check_password(password)

    call_command("ensure_demo_staff")
    second = capsys.readouterr().out
    assert "exists" in second and password not in second
    assert User.objects.filter(is_staff=True).count() == 1


def test_favicon_ico_points_at_the_site_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/img/favicon.svg"


@pytest.mark.django_db
def test_a_signed_in_session_is_in_the_database_and_with_redis_url_in_redis_too(client):
    """Django's own session backends: the database always, Redis in front with REDIS_URL."""
    user = get_user_model().objects.create_user("session_owner")
    client.force_login(user)
    session_key = client.cookies["sessionid"].value

    row = Session.objects.get(session_key=session_key)
    assert row.get_decoded()["_auth_user_id"] == str(user.pk)
    assert client.get("/profile/").status_code == 200  # signed in: not sent to /login/
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        import redis

        assert list(redis.Redis.from_url(redis_url).scan_iter(match=f"*{session_key}"))
