"""The dashboard's figures are kept by every write, never recounted, and equal a recount.

Each test changes accounts the way the site does (real sign-ins and refreshes
against the X sandbox, revokes, Disconnect X, deletions, bulk jobs that fail, the
ORM's bulk paths) and then compares what the admin index shows with a full
recount of the rows, made here independently of the site's code.
"""

import io
import re
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import tokens as token_ops
from accounts.models import PendingRevocation, Profile, TokenKind, TokenStatus, XToken
from admin_ext import jobs
from admin_ext.models import BulkJob, SignInEvent, TokenAction
from tallies import counting
from tallies.models import TallyDelta
from tests.test_admin_support import sign_in_many, staff_user
from tests.test_dashboard import figure, health, section
from tests.test_signin_flows import OAUTH1, OAUTH2, point_site_at, sign_in

User = get_user_model()
STATUS_LABELS = {status.value: status.label for status in TokenStatus}


def recount() -> dict:
    """What the dashboard must show, counted from the rows as they are now."""
    now, today = timezone.now(), timezone.localdate()
    with_x = Profile.objects.filter(x_user_id__isnull=False)
    week = [today - timedelta(days=n) for n in range(7)]
    month = [today - timedelta(days=n) for n in range(30)]
    statuses = Counter(XToken.objects.values_list("status", flat=True))
    token_rows = {label: statuses[status] for status, label in STATUS_LABELS.items()}
    token_rows["Expiring within 24 h"] = XToken.objects.filter(
        status=TokenStatus.ACTIVE,
        kind=TokenKind.OAUTH2,
        expires_at__isnull=False,
        expires_at__lte=now + timedelta(hours=24),
    ).count()
    token_rows["Revocations X has not confirmed yet"] = PendingRevocation.objects.filter(
        resolved_at__isnull=True
    ).count()
    latest_jobs = BulkJob.objects.order_by("-created_at", "-id")[:5]
    return {
        "jobs": [
            (job.items.count(), job.items.filter(status__in=["ok", "failed"]).count())
            for job in latest_jobs
        ],
        "Users": Profile.objects.count(),
        "With X": with_x.count(),
        "New this week": with_x.filter(created_at__date__in=week).count(),
        "Last signed in with OAuth 1.0a": with_x.filter(sign_in_method=TokenKind.OAUTH1).count(),
        "Last signed in with OAuth 2.0": with_x.filter(sign_in_method=TokenKind.OAUTH2).count(),
        "tokens": token_rows,
        "sign-ups": with_x.filter(created_at__date__in=month).count(),
        "sign-ins": SignInEvent.objects.filter(created_at__date__in=month).count(),
    }


def shown(admin_client) -> dict:
    """The same figures as the admin index shows them, with nothing cached."""
    html = admin_client.get("/admin/").content.decode()
    labels = [
        "Users",
        "With X",
        "New this week",
        "Last signed in with OAuth 1.0a",
        "Last signed in with OAuth 2.0",
    ]
    activity = " ".join(section(html, "dash-activity").split())
    jobs = section(html, "dash-jobs") if 'id="dash-jobs"' in html else ""
    return {
        "jobs": [
            (int(total), int(done))
            for total, done in re.findall(r'<progress max="(\d+)" value="(\d+)"', jobs)
        ],
        **{label: figure(html, label) for label in labels},
        "tokens": health(html),
        "sign-ups": int(re.search(r"(\d+) sign-ups?\b", activity).group(1)),
        "sign-ins": int(re.search(r"(\d+) sign-ins? with X", activity).group(1)),
    }


def assert_dashboard_matches_a_recount(admin_client) -> None:
    expected, actual = recount(), shown(admin_client)
    expected["tokens"] = dict(sorted(expected["tokens"].items()))
    actual["tokens"] = dict(sorted(actual["tokens"].items()))
    assert actual == expected


@pytest.fixture
def admin_client(db, client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw-unused-1"))
    return client


@pytest.mark.django_db
def test_figures_equal_a_recount_after_sign_ins_refreshes_revokes_deletions_and_failed_jobs(
    x_sandbox, settings, admin_client
):
    point_site_at(x_sandbox, settings)
    x_sandbox.add_personas([{"screen_name": f"fig{n}"} for n in range(6)])
    people = {}
    for n, provider in enumerate([OAUTH1, OAUTH2, OAUTH2, OAUTH1, OAUTH2, OAUTH2]):
        people[n] = Client()
        sign_in(people[n], provider, f"fig{n}")
    sign_in(people[0], OAUTH2, "fig0")  # a second method: one user, two tokens
    sign_in(people[1], OAUTH2, "fig1")  # signing in again replaces the token
    assert_dashboard_matches_a_recount(admin_client)

    oauth2 = list(XToken.objects.filter(kind=TokenKind.OAUTH2).order_by("pk"))
    assert token_ops.refresh_token(oauth2[0]).ok
    x_sandbox.fault("/2/oauth2/token", status=503)
    assert not token_ops.refresh_token(oauth2[1]).ok  # kept, marked "error"
    assert token_ops.revoke_token(oauth2[2]).ok
    x_sandbox.fault("/2/oauth2/revoke", status=503, times=4)
    assert not token_ops.revoke_token(oauth2[3]).ok  # kept, and a pending revocation
    assert_dashboard_matches_a_recount(admin_client)

    x_sandbox.fault("/2/oauth2/token", status=400, times=20)
    job = jobs.create_job(
        TokenAction.REFRESH,
        XToken.objects.filter(kind=TokenKind.OAUTH2, status=TokenStatus.ACTIVE),
        actor=staff_user("runner", "accounts.refresh_token"),
    )
    progress = jobs.run_job(job)
    assert progress.failed >= 1
    x_sandbox.clear_faults()
    assert_dashboard_matches_a_recount(admin_client)
    # A refresh that brings an "error" token back to active moves it between figures;
    # one that keeps an active token active leaves them be.
    assert XToken.objects.get(pk=oauth2[1].pk).status == TokenStatus.ERROR
    assert token_ops.refresh_token(oauth2[1]).ok
    assert token_ops.refresh_token(oauth2[1]).ok
    assert_dashboard_matches_a_recount(admin_client)

    people[4].post("/profile/disconnect/")
    User.objects.get(x_profile__screen_name="fig5").delete()
    response = admin_client.post(
        "/admin/auth/user/",
        {
            "action": "delete_selected",
            "_selected_action": [User.objects.get(x_profile__screen_name="fig3").pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert not User.objects.filter(x_profile__screen_name__in=["fig3", "fig5"]).exists()
    assert_dashboard_matches_a_recount(admin_client)


@pytest.mark.django_db
def test_bulk_writes_keep_the_figures_exact(x_sandbox, admin_client):
    tokens = sign_in_many(x_sandbox, 12, prefix="bulk")
    assert_dashboard_matches_a_recount(admin_client)

    XToken.objects.filter(pk__in=[t.pk for t in tokens[:5]]).update(status=TokenStatus.EXPIRED)
    stale = XToken.objects.get(pk=tokens[0].pk)
    XToken.objects.filter(pk=stale.pk).update(status=TokenStatus.INVALID)
    stale.save()  # a stale copy saved: the figure moves from what the row held
    some = list(XToken.objects.filter(pk__in=[t.pk for t in tokens[5:8]]))
    for token in some:
        token.status = TokenStatus.UNREADABLE
    XToken.objects.bulk_update(some, ["status"])
    Profile.objects.filter(pk=tokens[8].profile_id).update(sign_in_method=TokenKind.OAUTH1)
    Profile.objects.filter(pk=tokens[9].profile_id).update(
        created_at=timezone.now() - timedelta(days=40)
    )
    Profile.objects.filter(pk=tokens[10].profile_id).update(x_user_id=None)
    profile = tokens[11].profile
    token_ops.store_token(profile, TokenKind.OAUTH2, access_token="replacement")
    token_ops.store_token(profile, TokenKind.OAUTH1, access_token="new", token_secret="s")
    User.objects.filter(pk__in=[t.profile.user_id for t in tokens[3:6]]).delete()
    XToken.objects.filter(pk=tokens[6].pk).delete()
    User.objects.create_user("staff-without-x")

    assert_dashboard_matches_a_recount(admin_client)


@pytest.mark.django_db
def test_the_dashboard_reads_figures_instead_of_counting_accounts(x_sandbox, admin_client):
    sign_in_many(x_sandbox, 3, prefix="read")
    with CaptureQueriesContext(connection) as queries:
        admin_client.get("/admin/")
    counted = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    # Only the clock-dependent window (an index range) and the pending list are counted.
    assert not any("accounts_profile" in sql or "signinevent" in sql for sql in counted)
    assert [sql for sql in counted if "accounts_xtoken" in sql] == [
        sql for sql in counted if "expires_at" in sql
    ]


@pytest.mark.django_db
def test_compaction_folds_rows_without_changing_a_figure(x_sandbox, admin_client):
    tokens = sign_in_many(x_sandbox, 4, prefix="fold")
    for _ in range(counting.COMPACT_EVERY // 4 + 1):  # enough rows to cross a compaction
        for status in (TokenStatus.ERROR, TokenStatus.ACTIVE):
            XToken.objects.filter(pk__in=[t.pk for t in tokens]).update(status=status)
    assert TallyDelta.objects.count() < counting.COMPACT_EVERY
    assert_dashboard_matches_a_recount(admin_client)


@pytest.mark.django_db
def test_recount_command_repairs_figures_after_a_write_that_bypassed_django(
    x_sandbox, admin_client
):
    sign_in_many(x_sandbox, 3, prefix="raw")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_xtoken SET status = 'invalid'")
    assert shown(admin_client)["tokens"]["Invalid"] == 0  # raw SQL is not seen

    call_command("recount_tallies", stdout=io.StringIO())

    assert_dashboard_matches_a_recount(admin_client)
    assert shown(admin_client)["tokens"]["Invalid"] == 3
