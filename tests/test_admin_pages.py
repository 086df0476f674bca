"""What staff see on the admin pages: profiles, masked tokens, users, and no secret anywhere."""

from datetime import timedelta

import pytest
from allauth.socialaccount.models import SocialApp
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import SECRET_COLUMNS, Profile, TokenKind, TokenStatus, XToken
from admin_ext.admin import ProfileAdmin
from tests.test_admin_support import sandbox_report, sign_in, sign_in_many

pytestmark = pytest.mark.django_db

PROFILES = reverse("admin:accounts_profile_changelist")
TOKENS = reverse("admin:accounts_xtoken_changelist")


@pytest.fixture
def superuser_client(client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw-boss-123")
    client.force_login(admin)
    return client


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    return x_sandbox


def every_secret_x_issued(x_sandbox) -> list[str]:
    return [secret for secret in sandbox_report(x_sandbox)["secrets"] if len(secret) >= 8]


def test_profile_list_shows_the_account_and_its_current_token(superuser_client, x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    profile = token.profile
    profile.name, profile.followers_count = "Ada Lovelace", 1815
    profile.profile_image_url = f"{x_sandbox.base_url}/profile_images/1000000001/a_normal.jpg"
    profile.save()

    html = superuser_client.get(PROFILES).content.decode()

    assert f'href="{x_sandbox.base_url}/ada_lovelace"' in html and "@ada_lovelace" in html
    assert "Ada Lovelace" in html and "1815" in html
    assert f"OAuth 2.0 …{token.access_token[-4:]}" in html
    assert 'src="' + profile.profile_image_url + '"' in html
    assert "Active" in html


def test_profile_list_costs_the_same_queries_for_10_or_100_rows(
    superuser_client, x_sandbox, monkeypatch, django_assert_max_num_queries
):
    tokens = sign_in_many(x_sandbox, 100)
    # Half signed in last with the other method: the current-token rule must hold.
    Profile.objects.filter(pk__in=[t.profile_id for t in tokens[:50]]).update(
        sign_in_method=TokenKind.OAUTH1
    )
    monkeypatch.setattr(ProfileAdmin, "list_per_page", 10)
    with CaptureQueriesContext(connection) as ten_rows:
        html = superuser_client.get(PROFILES).content.decode()
    assert html.count('class="action-select"') == 10

    monkeypatch.setattr(ProfileAdmin, "list_per_page", 100)
    with django_assert_max_num_queries(len(ten_rows)):
        html = superuser_client.get(PROFILES).content.decode()
    assert html.count('class="action-select"') == 100
    assert html.count("OAuth 2.0 …") == 100


def test_profile_filters_and_search(superuser_client, x_sandbox):
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    pat = sign_in(x_sandbox, "private_pat", TokenKind.OAUTH2)
    Profile.objects.filter(pk=pat.profile_id).update(protected=True)
    XToken.objects.filter(pk=ada.pk).update(expires_at=timezone.now() + timedelta(minutes=20))
    XToken.objects.filter(pk=pat.pk).update(status=TokenStatus.INVALID)

    def listed(**params) -> set[str]:
        html = superuser_client.get(PROFILES, params).content.decode()
        return {
            name for name in ("ada_lovelace", "grace_hopper", "private_pat") if f"@{name}<" in html
        }

    assert listed(token_status="invalid") == {"private_pat"}
    assert listed(token_kind="oauth1") == {"grace_hopper"}
    assert listed(expires="1h") == {"ada_lovelace"}
    assert listed(protected__exact="1") == {"private_pat"}
    assert listed(q="grace") == {"grace_hopper"}
    assert listed(q="1000000001") == {"ada_lovelace"}
    assert listed(q="hopper@example.com") == {"grace_hopper"}
    assert listed() == {"ada_lovelace", "grace_hopper", "private_pat"}


@pytest.mark.parametrize(
    "column",
    [
        "account",
        "x_link",
        "followers",
        "token_kind",
        "token_status",
        "token_expires",
        "last_synced",
        "last_sign_in",
    ],
)
def test_every_profile_column_sorts(superuser_client, x_sandbox, column):
    sign_in(x_sandbox, "ada_lovelace")
    index = ProfileAdmin.list_display.index(column) + 1  # the checkbox column is 0
    response = superuser_client.get(PROFILES, {"o": f"-{index}"})
    assert response.status_code == 200
    assert f'class="sortable column-{column} sorted descending"' in response.content.decode()


def test_token_pages_show_only_the_masked_token(superuser_client, x_sandbox):
    oauth2 = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    oauth1 = sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    pages = [
        TOKENS,
        reverse("admin:accounts_xtoken_change", args=[oauth2.pk]),
        reverse("admin:accounts_xtoken_change", args=[oauth1.pk]),
        PROFILES,
        reverse("admin:accounts_profile_change", args=[oauth2.profile_id]),
        reverse("admin:auth_user_change", args=[oauth1.profile.user_id]),
        reverse("admin:auth_user_changelist"),
    ]
    secrets = every_secret_x_issued(x_sandbox)
    assert oauth2.refresh_token in secrets and oauth1.token_secret in secrets
    for url in pages:
        html = superuser_client.get(url).content.decode()
        leaked = [secret for secret in secrets if secret in html]
        assert leaked == [], f"{url} shows a token"
    detail = superuser_client.get(pages[1]).content.decode()
    assert f"OAuth 2.0 …{oauth2.access_token[-4:]}" in detail
    for secret_field in SECRET_COLUMNS:
        assert f'name="{secret_field}"' not in detail


def test_tokens_cannot_be_added_edited_or_searched_by_value(superuser_client, x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    change_url = reverse("admin:accounts_xtoken_change", args=[token.pk])

    assert superuser_client.get(reverse("admin:accounts_xtoken_add")).status_code == 403
    delete_page = superuser_client.get(reverse("admin:accounts_xtoken_delete", args=[token.pk]))
    assert "1 X grant will be revoked at X" in delete_page.content.decode()
    superuser_client.post(change_url, {"status": "active", "access_token": "forged"})
    assert XToken.objects.get(pk=token.pk).access_token == token.access_token

    def rows_found(query: str) -> int:
        html = superuser_client.get(TOKENS, {"q": query}).content.decode()
        return html.count('class="action-select"')

    assert rows_found(token.access_token) == 0
    assert rows_found(token.access_token[-4:]) == 0
    assert rows_found("ada_lovelace") == 1


def test_allauth_token_page_is_gone_and_app_page_hides_the_secret(superuser_client):
    app = SocialApp.objects.create(
        provider="twitter_oauth2", name="X", client_id="public-client-id", secret="app-secret-xyz"
    )

    assert superuser_client.get("/admin/socialaccount/socialtoken/").status_code == 404
    listing = superuser_client.get("/admin/socialaccount/socialapp/").content.decode()
    detail = superuser_client.get(
        f"/admin/socialaccount/socialapp/{app.pk}/change/"
    ).content.decode()
    assert "public-client-id" in listing
    assert "app-secret-xyz" not in listing + detail
    assert superuser_client.get("/admin/socialaccount/socialapp/add/").status_code == 403


def test_user_page_shows_the_x_profile_and_token_status(superuser_client, x_sandbox):
    token = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    XToken.objects.filter(pk=token.pk).update(status=TokenStatus.EXPIRED)

    listing = superuser_client.get(reverse("admin:auth_user_changelist")).content.decode()
    detail = superuser_client.get(
        reverse("admin:auth_user_change", args=[token.profile.user_id])
    ).content.decode()

    assert "@ada_lovelace" in listing and "Expired" in listing
    assert "X profile" in detail and "1000000001" in detail
    assert f"OAuth 2.0 …{token.access_token[-4:]}" in detail and "Expired" in detail
