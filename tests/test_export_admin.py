"""Export from the Profile admin: who may, what gets exported, how it is delivered.

These drive the site's own Profile admin (admin_ext.admin.ProfileAdmin, which
inherits ProfileExportMixin) through the test client.
"""

import io

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.http import StreamingHttpResponse

from accounts.models import Profile
from admin_ext.export import export_columns
from admin_ext.export_admin import ProfileExportMixin
from admin_ext.models import ExportJob, ExportStatus
from tests.test_export import (
    HEADERS,
    build_people,
    csv_rows,
    run_command,
    secrets_everywhere,
    xlsx_rows,
    xlsx_text,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/profile/"
EXPORT = CHANGELIST + "export/"
FORMAT_INDEX = {"csv": "0", "xlsx": "1", "json": "2"}
ALL_FIELDS = [column.name for column in export_columns()]


def staff(username: str, *codenames: str):
    user = get_user_model().objects.create_user(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def people(x_sandbox, settings):
    return build_people(x_sandbox, settings)


@pytest.fixture
def exporter(client):
    user = staff("exporter", "view_profile", "export_profile")
    client.force_login(user)
    return user


def form_data(export_format: str, fields=ALL_FIELDS, **extra) -> dict:
    data = {"resource": "0", "format": FORMAT_INDEX[export_format], **extra}
    data.update({f"profileresource_{name}": "on" for name in fields})
    return data


def export(client, export_format: str, query: str = "", **form):
    return client.post(EXPORT + (f"?{query}" if query else ""), form_data(export_format, **form))


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def screen_names(response) -> list[str]:
    return sorted(row[1] for row in csv_rows(body(response))[1:])


def test_the_site_profile_admin_exports():
    assert isinstance(admin.site._registry[Profile], ProfileExportMixin)


def test_staff_without_export_permission_get_no_button_no_action_and_403(client, people):
    client.force_login(staff("viewer", "view_profile"))
    changelist = client.get(CHANGELIST)
    assert changelist.status_code == 200
    assert b"export_link" not in changelist.content
    assert b"export_profiles" not in changelist.content
    assert client.get(EXPORT).status_code == 403
    assert export(client, "csv").status_code == 403
    action = client.post(
        CHANGELIST,
        {"action": "export_profiles", "_selected_action": [people["ada_lovelace"].pk]},
    )
    assert action.status_code == 403, "an action the user is not offered is refused"


def test_the_button_carries_the_list_filters_and_exports_exactly_that_list(
    client, exporter, people
):
    changelist = client.get(CHANGELIST, {"q": "lovelace"})
    assert b'href="/admin/accounts/profile/export/?q=lovelace"' in changelist.content
    page = client.get(EXPORT + "?q=lovelace")
    assert b"Exports the 1 profile in the filtered list" in page.content
    response = export(client, "csv", "q=lovelace")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert screen_names(response) == ["ada_lovelace"]
    revoked = export(client, "csv", "token_status=revoked")
    assert screen_names(revoked) == ["grace_hopper"]


def test_json_streams_too(client, exporter, people):
    response = export(client, "json", "q=formula")
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("application/json")
    assert b'"=HYPERLINK(' in body(response)


def test_the_action_exports_the_selection(client, exporter, people):
    picked = [people["ada_lovelace"].pk, people["private_pat"].pk]
    form_page = client.post(CHANGELIST, {"action": "export_profiles", "_selected_action": picked})
    assert form_page.status_code == 200
    assert b"Exports the 2 selected profiles" in form_page.content
    selected = f"{picked[0]},{picked[1]}"
    assert f'name="selected" value="{selected}"'.encode() in form_page.content
    response = export(client, "csv", selected=selected)
    assert screen_names(response) == ["ada_lovelace", "private_pat"]


def test_a_selection_cannot_reach_beyond_the_filtered_list(client, exporter, people):
    selected = f"{people['ada_lovelace'].pk},{people['grace_hopper'].pk}"
    response = export(client, "csv", "q=grace", selected=selected)
    assert screen_names(response) == ["grace_hopper"]


def test_select_all_of_more_rows_than_a_form_may_post(client, exporter, settings):
    """1,500 profiles: more than DATA_UPLOAD_MAX_NUMBER_FIELDS, so a per-pk form would fail."""
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"bulk{i:04}") for i in range(1500)
    )
    Profile.objects.bulk_create(
        Profile(user=user, screen_name=f"bulk{i:04}", x_user_id=str(4_000_000_000 + i))
        for i, user in enumerate(users)
    )
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS < 1500
    first_page = list(Profile.objects.order_by("-pk").values_list("pk", flat=True)[:100])
    action = client.post(
        CHANGELIST + "?q=bulk",
        {"action": "export_profiles", "select_across": "1", "_selected_action": first_page},
    )
    assert action.status_code == 302
    assert action["Location"] == EXPORT + "?q=bulk"
    page = client.get(action["Location"])
    assert b"Exports the 1500 profiles in the filtered list" in page.content
    assert page.content.count(b'type="hidden"') < 10
    response = export(client, "csv", "q=bulk")
    assert len(screen_names(response)) == 1500


def test_staff_pick_the_fields(client, exporter, people):
    response = export(client, "csv", fields=["screen_name", "followers"])
    rows = csv_rows(body(response))
    assert rows[0] == ["screen name", "followers"]
    assert len(rows) == len(people) + 1


@pytest.mark.parametrize("export_format", ["csv", "xlsx", "json"])
def test_no_secret_in_any_admin_export(client, exporter, people, x_sandbox, export_format):
    data = body(export(client, export_format))
    text = xlsx_text(data) if export_format == "xlsx" else data.decode()
    assert "ada_lovelace" in text
    for secret in secrets_everywhere(x_sandbox):
        assert secret not in text


def test_small_xlsx_comes_straight_back_with_formulas_neutralised(client, exporter, people):
    response = export(client, "xlsx")
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    rows = xlsx_rows(body(response))
    assert rows[0] == HEADERS
    fred = next(row for row in rows if row[1] == "formula_fred")
    assert fred[HEADERS.index("description")].startswith("'=HYPERLINK(")
    assert not ExportJob.objects.exists()


@pytest.mark.parametrize(
    ("query", "options"),
    [
        ("", []),
        ("q=lovelace", ["--search", "lovelace"]),
        ("q=fred%40example.net", ["--search", "fred@example.net"]),
        ("token_status=revoked", ["--token-status", "revoked"]),
        ("token_status=none", ["--token-status", "none"]),
        ("x_created_at__gte=2024-06-01+00%3A00%3A00%2B00%3A00", ["--joined-after", "2024-06-01"]),
    ],
)
@pytest.mark.parametrize("export_format", ["csv", "json", "xlsx"])
def test_the_command_writes_what_the_admin_exports(
    client, exporter, people, tmp_path, query, options, export_format
):
    admin_file = body(export(client, export_format, query))
    command_file = run_command(tmp_path, "--format", export_format, *options)
    if export_format == "xlsx":
        # A workbook's zip carries timestamps; compare what is in the cells.
        assert xlsx_rows(admin_file) == xlsx_rows(command_file)
    else:
        assert admin_file == command_file
    assert len(admin_file) > 50


@pytest.fixture
def big_xlsx_settings(settings, tmp_path):
    settings.EXPORT_XLSX_SYNC_LIMIT = 3
    settings.EXPORT_DIR = tmp_path / "exports"
    return settings


def run_worker() -> None:
    call_command("db_worker", batch=True, reload=False, startup_delay=False, stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_a_big_xlsx_becomes_a_background_job_only_its_requester_downloads(
    client, exporter, people, big_xlsx_settings
):
    response = export(client, "xlsx", "q=_")
    job = ExportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{CHANGELIST}export/jobs/{job.pk}/"
    waiting = client.get(response["Location"])
    assert b'http-equiv="refresh"' in waiting.content
    assert job.status == ExportStatus.PENDING

    run_worker()

    job.refresh_from_db()
    assert job.status == ExportStatus.DONE, job.error
    expected = sorted(p.screen_name for p in people.values() if "_" in p.screen_name)
    assert job.row_count == len(expected)
    done = client.get(response["Location"])
    download_url = f"{CHANGELIST}export/jobs/{job.pk}/download/"
    assert download_url.encode() in done.content
    download = client.get(download_url)
    assert download.status_code == 200
    rows = xlsx_rows(body(download))
    assert rows[0] == HEADERS
    assert sorted(row[1] for row in rows[1:]) == expected
    assert not list(big_xlsx_settings.EXPORT_DIR.glob("*.part"))

    client.force_login(staff("other_exporter", "view_profile", "export_profile"))
    assert client.get(download_url).status_code == 404
    client.force_login(staff("viewer", "view_profile"))
    assert client.get(download_url).status_code == 403
    client.logout()
    assert client.get(download_url).status_code == 302


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_requester_lost_the_permission_writes_nothing(
    client, exporter, people, big_xlsx_settings
):
    export(client, "xlsx")
    exporter.user_permissions.remove(Permission.objects.get(codename="export_profile"))
    run_worker()
    job = ExportJob.objects.get()
    assert job.status == ExportStatus.FAILED
    assert job.error == "You no longer may export profiles."
    assert not big_xlsx_settings.EXPORT_DIR.exists() or not any(
        big_xlsx_settings.EXPORT_DIR.iterdir()
    )
