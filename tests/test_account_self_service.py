"""A person's own account against the sandbox over HTTP: see it, download it, disconnect, delete.

The site runs in Django's test client and signs in through the real sandbox
(helpers from test_signin_flows); every grant's end is checked at the sandbox by
calling X with the old token.
"""

import json
from datetime import datetime

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.test import Client

from accounts import account_data, x_client
from accounts.account_deletion import subject_hash
from accounts.fields import EncryptedTextField
from accounts.models import SECRET_COLUMNS, AccountDeletion, PendingRevocation, Profile, XToken
from accounts.revocation import retry_due_revocations
from accounts.x_client import XTokenInvalid
from admin_ext import jobs
from admin_ext.models import AuditEvent, BulkJobItem, TokenAction
from tests.test_signin_flows import OAUTH1, OAUTH2, all_database_text, sign_in, signed_in_user

User = get_user_model()
ADA = {
    "screen_name": "ada_lovelace",
    "x_user_id": "1000000001",
    "name": "Ada Lovelace",
}


@pytest.fixture
def x(x_sandbox, settings):
    from tests.test_signin_flows import point_site_at

    settings.X_HTTP_RETRIES = 0
    return point_site_at(x_sandbox, settings)


def grants_alive(tokens: list[tuple[str, str, str]]) -> list[bool]:
    """Ask X, with each old token, whether it still works."""
    alive = []
    for kind, access_token, token_secret in tokens:
        try:
            if kind == "oauth1":
                x_client.verify_credentials(access_token, token_secret)
            else:
                x_client.get_me(access_token)
            alive.append(True)
        except XTokenInvalid:
            alive.append(False)
    return alive


def held_tokens() -> list[tuple[str, str, str]]:
    return [(t.kind, t.access_token, t.token_secret) for t in XToken.objects.order_by("kind")]


def ada_bio() -> str:
    return Profile.objects.get(x_user_id=ADA["x_user_id"]).description


# 1. The account page ---------------------------------------------------------------------


@pytest.mark.django_db
def test_account_page_shows_what_is_stored_grants_and_events_but_no_secret(x):
    client = Client()
    sign_in(client, OAUTH1)
    sign_in(client, OAUTH2)
    secrets = x.secrets()

    html = client.get("/account/").content.decode()

    for shown in ("Ada Lovelace", "ada_lovelace", "1000000001"):
        assert shown in html
    assert "London, England" in html and "Poet of science" in html
    assert html.count('class="grant"') == 2
    assert "OAuth 1.0a" in html and "OAuth 2.0" in html
    assert XToken.objects.get(kind="oauth2").scopes in html
    assert html.count("<li><time") >= 2  # both sign-ins listed
    assert [secret for secret in secrets if secret in html] == []
    assert 'href="/account/data.json"' in html and 'href="/account/delete/"' in html


@pytest.mark.django_db
def test_account_pages_need_a_signed_in_person():
    client = Client()
    for path in ("/account/", "/account/data.json", "/account/disconnect/", "/account/delete/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


# 2. Download my data -----------------------------------------------------------------------


@pytest.mark.django_db
def test_download_is_json_with_typed_values_and_no_secret(x):
    client = Client()
    sign_in(client, OAUTH2)
    secrets = x.secrets()

    response = client.get("/account/data.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="my-data-')
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert [secret for secret in secrets if secret in body] == []
    data = json.loads(body)
    assert data["schema_version"] == account_data.SCHEMA_VERSION
    profile = data["profile"]
    assert profile["screen_name"] == "ada_lovelace" and profile["x_user_id"] == "1000000001"
    assert profile["followers_count"] == 1815 and profile["verified"] is True
    assert datetime.fromisoformat(profile["x_created_at"]).year == 2015
    assert data["user"]["username"] == "ada_lovelace" and "password" not in data["user"]
    (grant,) = data["x_grants"]
    assert grant["kind"] == "oauth2" and grant["status"] == "active"
    assert set(grant["scopes"].split()) == {"tweet.read", "users.read", "offline.access"}
    datetime.fromisoformat(grant["expires_at"])
    datetime.fromisoformat(grant["last_used_at"])
    assert not set(grant) & {*SECRET_COLUMNS, *account_data.SECRET_DERIVED}
    assert data["x_connections"][0]["provider"] == "twitter_oauth2"
    assert [event["method"] for event in data["sign_ins"]] == ["oauth2"]


def test_every_encrypted_column_of_every_model_is_a_secret_and_the_rest_is_shared():
    """A column added later is downloaded by itself, unless it is encrypted or a secret."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField):
                assert account_data.is_secret(field), field
    shared = {field.name for field in account_data.shared_fields(Profile)}
    assert shared == {f.name for f in Profile._meta.concrete_fields} - {"user"}
    token_columns = {field.name for field in account_data.shared_fields(XToken)}
    assert token_columns.isdisjoint({*SECRET_COLUMNS, *account_data.SECRET_DERIVED})
    # The named secret columns are exactly the encrypted ones of both grant tables.
    for model in (XToken, PendingRevocation):
        fields = model._meta.concrete_fields
        encrypted = {f.name for f in fields if isinstance(f, EncryptedTextField)}
        assert encrypted == set(SECRET_COLUMNS), model
    assert {"kind", "status", "scopes", "expires_at", "last_checked_at"} <= token_columns


# 3. Disconnect X with a confirmation step -------------------------------------------------


@pytest.mark.django_db
def test_disconnect_asks_first_and_says_x_is_the_only_way_in(x):
    client = Client()
    sign_in(client, OAUTH1)
    held = held_tokens()

    page = client.get("/account/disconnect/").content.decode()

    assert "X is your only way to sign in here" in page
    assert XToken.objects.count() == 1 and grants_alive(held) == [True]
    response = client.post("/account/disconnect/", follow=True)
    assert "Disconnected from X" in response.content.decode()
    assert XToken.objects.count() == 0 and grants_alive(held) == [False]


@pytest.mark.django_db
def test_disconnect_confirmation_of_someone_with_a_password_does_not_say_only_way(x):
    client = Client()
    sign_in(client, OAUTH1)
    user = signed_in_user(client)
    user.set_password("a long usable password")
    user.save()
    client.force_login(user)

    page = client.get("/account/disconnect/").content.decode()

    assert "Disconnect X?" in page and "only way to sign in" not in page


# 4. Delete my account ---------------------------------------------------------------------


def leave_traces_everywhere(client: Client, staff: User) -> None:
    """What staff tools keep about a person: a check job (items, audit, admin log), and a
    failed admin login under their username (django-axes)."""
    job = jobs.create_job(TokenAction.CHECK, XToken.objects.all(), actor=staff)
    jobs.run_job(job, pool_size=1)
    assert BulkJobItem.objects.filter(screen_name="ada_lovelace").exists()
    Client().post("/admin/login/", {"username": "ada_lovelace", "password": "wrong"})


def traces_of(texts: list[str]) -> list[str]:
    everything = all_database_text()
    return [text for text in texts if text and text in everything]


@pytest.mark.django_db
def test_wrong_confirmation_deletes_nothing(x):
    client = Client()
    sign_in(client, OAUTH1)
    held = held_tokens()

    response = client.post("/account/delete/", {"confirm": "@grace_hopper"})

    assert response.status_code == 400
    assert "That is not @ada_lovelace" in response.content.decode()
    assert signed_in_user(client) is not None and grants_alive(held) == [True]
    assert AccountDeletion.objects.count() == 0


@pytest.mark.django_db
def test_delete_revokes_every_grant_at_x_and_leaves_nothing_of_the_person(x):
    staff = User.objects.create_superuser("ops", "ops@example.com", "a staff password")
    client, other_device = Client(), Client()
    sign_in(client, OAUTH1)
    sign_in(client, OAUTH2)
    sign_in(other_device, OAUTH1)
    leave_traces_everywhere(client, staff)
    other_session = other_device.cookies["sessionid"].value
    held = held_tokens()
    bio = ada_bio()
    assert traces_of([ADA["screen_name"], ADA["x_user_id"], ADA["name"], bio])

    page = client.get("/account/delete/").content.decode()
    assert "Type <strong>@ada_lovelace</strong> to confirm" in page
    response = client.post("/account/delete/", {"confirm": "@ada_lovelace"}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "Your account is deleted" in response.content.decode()
    assert grants_alive(held) == [False, False]
    assert signed_in_user(client) is None
    assert not Session.objects.filter(session_key=other_session).exists()
    assert other_device.get("/account/")["Location"].startswith("/login/")
    assert not User.objects.filter(username="ada_lovelace").exists()
    assert traces_of([ADA["screen_name"], ADA["x_user_id"], ADA["name"], bio]) == []
    (deletion,) = AccountDeletion.objects.all()
    assert deletion.subject_hash == subject_hash(ADA["x_user_id"])
    assert (deletion.grants_revoked, deletion.grants_pending) == (2, 0)
    assert AuditEvent.objects.filter(profile=None, screen_name="").count() >= 2
    assert User.objects.filter(username="ops").exists()


@pytest.mark.django_db
def test_delete_while_x_is_down_keeps_the_grant_pending_without_naming_the_person(x):
    client = Client()
    sign_in(client, OAUTH1)
    held = held_tokens()
    bio = ada_bio()
    x.fault("/1.1/oauth/invalidate_token", status=503)

    response = client.post("/account/delete/", {"confirm": "ada_lovelace"}, follow=True)

    assert "X has not yet confirmed" in response.content.decode()
    assert grants_alive(held) == [True]
    pending = PendingRevocation.objects.get()
    assert pending.resolved_at is None and (pending.screen_name, pending.x_user_id) == ("", "")
    assert traces_of([ADA["screen_name"], ADA["x_user_id"], ADA["name"], bio]) == []
    assert AccountDeletion.objects.get().grants_pending == 1

    PendingRevocation.objects.update(next_attempt_at=pending.created_at)
    assert retry_due_revocations().revoked == 1
    assert grants_alive(held) == [False]
    assert traces_of([ADA["screen_name"], ADA["x_user_id"], ADA["name"], bio]) == []


@pytest.mark.django_db
def test_deleting_one_x_account_twice_shows_as_the_same_hash(x):
    for persona in ("ada_lovelace", "ada_lovelace", "grace_hopper"):
        client = Client()
        sign_in(client, OAUTH1, persona)
        client.post("/account/delete/", {"confirm": persona})
    hashes = list(AccountDeletion.objects.order_by("pk").values_list("subject_hash", flat=True))
    assert hashes[0] == hashes[1] != hashes[2]
    assert User.objects.count() == 0


@pytest.mark.django_db
def test_staff_see_deletions_on_the_dashboard(x, admin_client):
    for persona in ("ada_lovelace", "ada_lovelace", "grace_hopper"):
        client = Client()
        sign_in(client, OAUTH1, persona)
        client.post("/account/delete/", {"confirm": persona})

    html = admin_client.get("/admin/").content.decode()

    assert '<dt>Deleted by their owners</dt><dd title="2 distinct X accounts">3</dd>' in html
