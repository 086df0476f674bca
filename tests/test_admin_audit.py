"""The audit trail in the admin: complete, filterable, read-only, and free of secrets."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from accounts.models import TokenKind, XToken
from admin_ext import jobs
from admin_ext.models import AuditEvent, TokenAction
from tests.test_admin_support import sandbox_report, sign_in, staff_user

pytestmark = pytest.mark.django_db

AUDIT = reverse("admin:admin_ext_auditevent_changelist")


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    return x_sandbox


@pytest.fixture
def history(x_sandbox):
    """A check of two accounts (one dead at X) by `ops`, then a revoke of one by `boss`."""
    ops = staff_user("ops", "accounts.check_token")
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    pat = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH1)
    x_sandbox.revoke(pat.access_token)
    jobs.run_job(jobs.create_job(TokenAction.CHECK, XToken.objects.all(), actor=ops))
    revoke = XToken.objects.filter(pk=ada.pk)
    jobs.run_job(jobs.create_job(TokenAction.REVOKE, revoke, actor=boss))
    return {"ops": ops, "boss": boss, "ada": ada, "pat": pat}


def rows(client, **params) -> list[str]:
    html = client.get(AUDIT, params).content.decode()
    return [name for name in ("@ada_lovelace", "@private_pat") for _ in range(html.count(name))]


def test_every_account_of_every_action_has_an_event(history):
    events = AuditEvent.objects.order_by("pk")
    summary = [
        (e.actor_label, e.action, e.screen_name, e.x_user_id, e.outcome, e.http_status)
        for e in events
    ]
    assert summary == [
        ("ops", "check", "ada_lovelace", "1000000001", "ok", 200),
        ("ops", "check", "private_pat", "1000000003", "failed", 401),
        ("boss", "revoke", "ada_lovelace", "1000000001", "ok", 200),
    ]
    failed = events[1]
    assert "Invalid or expired token" in failed.message and failed.token_status == "invalid"


def test_audit_list_is_filterable_and_searchable(client, history):
    client.force_login(history["boss"])

    assert sorted(rows(client)) == ["@ada_lovelace", "@ada_lovelace", "@private_pat"]
    assert rows(client, outcome__exact="failed") == ["@private_pat"]
    assert rows(client, action__exact="revoke") == ["@ada_lovelace"]
    assert rows(client, actor__id__exact=history["ops"].pk).count("@ada_lovelace") == 1
    assert rows(client, q="private_pat") == ["@private_pat"]
    assert rows(client, q="1000000001") == ["@ada_lovelace", "@ada_lovelace"]


def test_audit_events_cannot_be_added_changed_or_deleted(client, history):
    client.force_login(history["boss"])
    event = AuditEvent.objects.first()
    change_url = reverse("admin:admin_ext_auditevent_change", args=[event.pk])

    assert client.get(reverse("admin:admin_ext_auditevent_add")).status_code == 403
    assert client.post(change_url, {"message": "edited", "outcome": "ok"}).status_code == 403
    assert (
        client.post(reverse("admin:admin_ext_auditevent_delete", args=[event.pk])).status_code
        == 403
    )
    client.post(AUDIT, {"action": "delete_selected", "_selected_action": [event.pk], "index": "0"})
    assert AuditEvent.objects.filter(pk=event.pk, message=event.message).exists()
    assert AuditEvent.objects.count() == 3


def test_no_secret_is_ever_written_to_the_audit_trail(client, history, x_sandbox):
    client.force_login(history["boss"])
    secrets = [s for s in sandbox_report(x_sandbox)["secrets"] if len(s) >= 8]
    stored = " ".join(
        " ".join(str(value) for value in row)
        for row in AuditEvent.objects.values_list("message", "screen_name", "x_user_id")
    )
    pages = client.get(AUDIT).content.decode() + "".join(
        client.get(reverse("admin:admin_ext_auditevent_change", args=[pk])).content.decode()
        for pk in AuditEvent.objects.values_list("pk", flat=True)
    )
    assert [s for s in secrets if s in stored or s in pages] == []


def test_staff_need_the_view_permission_to_read_the_trail(client, history):
    client.force_login(history["ops"])
    assert client.get(AUDIT).status_code == 403
    client.force_login(staff_user("auditor", "admin_ext.view_auditevent"))
    assert client.get(AUDIT).status_code == 200
