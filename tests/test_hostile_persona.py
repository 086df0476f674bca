"""The sandbox's `hostile_harry` signs in, is stored clean, shown safe and handled by staff.

hostile_harry (x_sandbox.personas.hostile_persona) carries everything X could send
that the site must neither store nor show as it came: NUL bytes (PostgreSQL
refuses them), terminal escapes, markup, a right-to-left override, a 10 kB bio, a
`javascript:` URL and counts of 2**40 and below zero. The sign-ins run in Chromium
with each method; the staff side runs through the test client against the sandbox.
Rows stored before X's values were cleaned are written straight into the database.
"""

import io
import json
import re

import openpyxl
import pytest
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from accounts.models import Profile, TokenKind, TokenStatus
from accounts.tokens import check_token
from admin_ext.models import BulkJob
from tests.sandbox import point_browser_site_at
from tests.test_admin_actions import post_action
from tests.test_admin_support import job_summary, run_queued_jobs
from tests.test_admin_support import sign_in as issue_sign_in
from tests.test_export_admin import body, export
from tests.test_signin_browser import sign_in_with_x
from tests.test_signin_flows import OAUTH1, OAUTH2, point_site_at
from tests.test_signin_flows import sign_in as client_sign_in

HARRY_ID = "1000000005"
MAX_COUNT = 2**31 - 1
# NUL, the other C0 controls, DEL, the C1 controls (CSI included) and the bidi
# embeddings, overrides and isolates: none may reach a page, a file or a terminal.
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
PROFILE_TEXT = ("x_user_id", "screen_name", "name", "location", "url", "description")
COUNTS = ("followers_count", "following_count", "tweet_count", "listed_count")
PROFILES = reverse("admin:accounts_profile_changelist")


def unsafe_in(text: str) -> list[str]:
    """The unsafe characters in `text`; a CSV's own CRLF line ends are fine."""
    found = UNSAFE.findall(text.replace("\r\n", "\n"))
    return sorted({f"U+{ord(char):04X}" for char in found})


def stored(x_user_id: str = HARRY_ID) -> dict:
    """The profile row as the database holds it (values(), so nothing cleans it on load)."""
    return Profile.objects.filter(x_user_id=x_user_id).values(*PROFILE_TEXT, *COUNTS).get()


# Signing in with each method, in Chromium ------------------------------------------------


@pytest.fixture
def site(live_server, x_sandbox, settings):
    point_browser_site_at(settings, x_sandbox.base_url)
    return live_server.url


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("method", ["OAuth 1.0a", "OAuth 2.0"])
def test_hostile_harry_signs_in_with_each_method_and_sees_safe_text(page, site, method):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    sign_in_with_x(page, site, method, "hostile_harry")

    sent = page.request.get(site + "/profile/").text()
    assert unsafe_in(sent) == []
    assert page.locator("h1").inner_text() == "Harry <b>Hostile</b>[2Jlmth.exe"
    bio = page.locator(".bio").inner_text()
    assert bio.startswith("<script>alert('bio')</script>[31mred alert[0m")
    assert "txet desrever <img src=x onerror=alert(1)> isolated 2J" in bio
    assert len(bio) <= 500
    assert page.locator("main b, main i, main script, main img:not(.avatar)").count() == 0
    assert page.locator(".profile-facts").inner_text().startswith("Location ]0;owned<i>Nowhere")
    assert page.locator('a[href^="javascript" i]').count() == 0
    assert "Website" not in page.locator(".profile-card").inner_text()
    assert page.locator('[data-count="followers"]').inner_text() == str(MAX_COUNT)
    assert page.locator('[data-count="following"]').inner_text() == "0"
    assert dialogs == []


# Signing in, at the test-client level ------------------------------------------------------


@pytest.fixture
def x(x_sandbox, settings):
    return point_site_at(x_sandbox, settings)


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_the_sign_in_stores_every_value_normalised(client, x, provider):
    client_sign_in(client, provider, "hostile_harry")

    row = stored()
    assert [name for name in PROFILE_TEXT if unsafe_in(row[name])] == []
    assert row["name"] == "Harry <b>Hostile</b>[2Jlmth.exe"
    assert row["location"] == "]0;owned<i>Nowhere</i>"
    assert row["url"] == ""
    assert len(row["description"]) == Profile._meta.get_field("description").max_length
    assert row["followers_count"] == MAX_COUNT and row["following_count"] == 0
    if provider == OAUTH2:
        assert (row["tweet_count"], row["listed_count"]) == (MAX_COUNT, 0)
    account = SocialAccount.objects.get(uid=HARRY_ID)
    assert unsafe_in(json.dumps(account.extra_data, ensure_ascii=False)) == []
    assert account.extra_data["name"] == row["name"]
    user = account.user
    assert unsafe_in(user.first_name + user.last_name + user.username) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hostile", "kept"),
    [
        ({"name": "Nul\x00Person"}, {"name": "NulPerson"}),
        ({"followers_count": 2**40}, {"followers_count": MAX_COUNT}),
        ({"friends_count": -1}, {"following_count": 0}),
        ({"location": "\x1b[2J\x07Home\u202e"}, {"location": "[2JHome"}),
        ({"url": "javascript:alert(1)"}, {"url": ""}),
        ({"description": "x" * 10_000}, {"description": "x" * 500}),
    ],
    ids=["nul", "2**40", "negative", "escapes", "javascript-url", "10k-bio"],
)
@pytest.mark.parametrize("provider", [OAUTH1, OAUTH2])
def test_each_hostile_value_alone_signs_in_and_is_normalised(client, x, provider, hostile, kept):
    [persona] = x.add_personas({"screen_name": "plain_pam", "name": "Pam", **hostile})

    client_sign_in(client, provider, "plain_pam")

    row = stored(persona["id"])
    assert {name: row[name] for name in kept} == kept


@pytest.mark.django_db
def test_both_methods_lead_to_one_account_and_the_second_updates_it(client, x):
    client_sign_in(client, OAUTH1, "hostile_harry")
    client.logout()
    client_sign_in(client, OAUTH2, "hostile_harry")

    assert Profile.objects.filter(x_user_id=HARRY_ID).count() == 1
    assert SocialAccount.objects.filter(user__x_profile__x_user_id=HARRY_ID).count() == 2
    assert client.get("/profile/").status_code == 200


# Staff: check, refresh, export -------------------------------------------------------------


@pytest.fixture
def boss(client, settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(user)
    return user


def export_text(client, export_format: str) -> str:
    response = export(client, export_format)
    assert response.status_code == 200, response.content[:500]
    data = body(response)
    if export_format == "xlsx":
        sheet = openpyxl.load_workbook(io.BytesIO(data)).active
        return "\n".join(str(cell.value) for row in sheet.iter_rows() for cell in row)
    return data.decode("utf-8")


def command_output(export_format: str) -> str:
    out = io.StringIO()
    call_command("export_profiles", "--format", export_format, "-o", "-", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [TokenKind.OAUTH1, TokenKind.OAUTH2])
def test_staff_check_refresh_and_export_the_hostile_account(client, boss, x_sandbox, kind):
    token = issue_sign_in(x_sandbox, "hostile_harry", kind)

    for action, label in (("check_tokens", "Check"), ("refresh_tokens", "Refresh")):
        response = post_action(client, PROFILES, action, [token.profile_id])
        assert response.status_code == 302, response.content[:500]
        run_queued_jobs()
        summary = job_summary(client, BulkJob.objects.get(action=action.split("_")[0]))
        assert summary.startswith(f"{label}: 1 ok, 0 failed"), summary

    row = stored()
    assert row["followers_count"] == MAX_COUNT and unsafe_in(row["description"]) == []
    pages = [
        "/admin/",
        PROFILES,
        reverse("admin:accounts_profile_change", args=[token.profile_id]),
        reverse("admin:admin_ext_auditevent_changelist"),
        *(
            reverse("admin:admin_ext_bulkjob_change", args=[pk])
            for pk in BulkJob.objects.values_list("pk", flat=True)
        ),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert unsafe_in(response.content.decode()) == [], url
    for export_format in ("csv", "xlsx", "json"):
        text = export_text(client, export_format)
        assert "Harry <b>Hostile</b>[2Jlmth.exe" in text
        assert unsafe_in(text) == [], export_format
    for export_format in ("csv", "json"):
        assert unsafe_in(command_output(export_format)) == [], export_format


# Rows stored before values from X were cleaned ----------------------------------------------

# What an older version stored as X sent it. PostgreSQL never took a NUL or a
# count beyond 32 bits (that sign-in failed), SQLite did.
HOSTILE_NAME = "\x1b]0;owned\x07Mallory \u202egnp.exe\x9b<b>bold</b>"


def store_hostile_row() -> Profile:
    user = get_user_model().objects.create_user("mallory")
    nul = "\x00" if connection.vendor == "sqlite" else ""
    Profile.objects.filter(user=user).update(
        x_user_id="2000000666",
        screen_name="mal\u202elory\x1b" + nul,
        name=HOSTILE_NAME + nul,
        location="\u2066isolated\u2069\x07" + nul,
        url="javascript:alert(document.cookie)",
        profile_image_url="javascript:alert(1)",
        description="=1+1\x1b[2J\r\nsecond line" + nul,
        followers_count=2**40 if connection.vendor == "sqlite" else MAX_COUNT,
    )
    return user.x_profile


@pytest.mark.django_db
def test_pages_show_a_stored_hostile_row_safely(client, boss):
    profile = store_hostile_row()
    post_action(client, PROFILES, "check_tokens", [profile.pk])
    run_queued_jobs()
    summary = job_summary(client, BulkJob.objects.get())
    assert summary.startswith("Check: 0 ok, 1 failed") and "@mallory" in summary
    pages = [
        reverse("admin:admin_ext_bulkjob_change", args=[BulkJob.objects.get().pk]),
        reverse("admin:admin_ext_auditevent_changelist"),
        PROFILES,
        PROFILES + "?q=mallory",
        reverse("admin:accounts_profile_change", args=[profile.pk]),
        reverse("admin:auth_user_change", args=[profile.user_id]),
        reverse("admin:accounts_xtoken_changelist"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert unsafe_in(html) == [], url
        assert "javascript:" not in html, url
    shown_name = "]0;ownedMallory gnp.exe&lt;b&gt;bold&lt;/b&gt;"
    assert shown_name in client.get(PROFILES).content.decode()

    client.force_login(profile.user)
    mine = client.get("/profile/").content.decode()
    assert unsafe_in(mine) == [] and "javascript:" not in mine
    assert shown_name in mine


@pytest.mark.django_db
def test_exports_of_a_stored_hostile_row_hold_no_control_character(client, boss):
    store_hostile_row()

    for export_format in ("csv", "xlsx", "json"):
        text = export_text(client, export_format)
        assert unsafe_in(text) == [], export_format
        assert "]0;ownedMallory gnp.exe<b>bold</b>" in text
    csv_text = command_output("csv")
    assert unsafe_in(csv_text) == []
    assert "'=1+1[2J\nsecond line" in csv_text.replace("\r\n", "\n")
    assert unsafe_in(command_output("json")) == []


HOSTILE_ERROR = "Over\x00 capacity \x1b[31m\u202e" + "x" * 5000


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kind", "path"),
    [
        (TokenKind.OAUTH1, "/1.1/account/verify_credentials.json"),
        (TokenKind.OAUTH2, "/2/users/me"),
    ],
)
def test_a_hostile_error_body_from_x_is_stored_clean(settings, x_sandbox, kind, path):
    """X's error text reaches last_error and the audit trail: NUL would fail PostgreSQL."""
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    token = issue_sign_in(x_sandbox, "ada_lovelace", kind)
    x_sandbox.fault(path, status=503, times=5, message=HOSTILE_ERROR)

    outcome = check_token(token)

    token.refresh_from_db()
    assert not outcome.ok and token.status == TokenStatus.ERROR
    assert "Over capacity" in token.last_error
    assert unsafe_in(token.last_error) == [] and unsafe_in(outcome.message) == []
    assert len(token.last_error) < 400
