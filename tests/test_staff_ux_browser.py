"""Issue 18, as a member of staff sees it in Chromium at 1440 by 900: what is on each
page, what each button does, and that nothing waits for X while the page is held."""

import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from accounts.models import TokenKind, TokenStatus, XToken
from admin_ext.models import BulkJob
from tests.sandbox import point_browser_site_at
from tests.test_admin_support import (
    access_token_is_live,
    run_queued_jobs,
    sign_in,
    sign_in_many,
    staff_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "irrelevant-pw-123"
WIDE = {"width": 1440, "height": 900}


@pytest.fixture(autouse=True)
def site_uses_sandbox(settings, x_sandbox):
    point_browser_site_at(settings, x_sandbox.base_url)
    return x_sandbox


@pytest.fixture
def wide(page):
    page.set_viewport_size(WIDE)
    return page


def log_in(page, live_server, username: str, next_url: str = "/admin/") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def superuser(username: str = "boss"):
    return get_user_model().objects.create_superuser(username, f"{username}@example.com", PASSWORD)


# Point 3: every action answers at once and its page follows it ------------------------------


def test_an_action_on_one_token_answers_at_once_and_its_rows_follow_the_bar(
    wide, live_server, x_sandbox
):
    superuser()
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    log_in(wide, live_server, "boss", "/admin/accounts/xtoken/")
    wide.locator(f'input.action-select[value="{ada.pk}"]').check()
    wide.locator('select[name="action"]').select_option("check_tokens")
    wide.get_by_role("button", name="Go").click()

    expect(wide.get_by_role("heading", name="Progress")).to_be_visible()
    assert x_sandbox.calls() == [], "the page came back before anything asked X"
    assert wide.locator('[data-field="state"]').inner_text() == "queued"
    expect(wide.locator("#job-items tbody")).to_contain_text("Pending")

    run_queued_jobs()

    expect(wide.locator("#job-summary")).to_have_text("Check: 1 ok, 0 failed.")
    expect(wide.locator("#job-items tbody")).to_contain_text("OK")
    expect(wide.locator("#job-items tbody")).not_to_contain_text("Pending")
    finished = wide.locator("#job-items tbody tr td").last
    expect(finished).to_have_text(re.compile(r"^(now|\d+\W+seconds? ago)$"))


# Point 2: acting on one account from its own page --------------------------------------------


def test_profile_page_has_check_refresh_revoke_buttons_for_staff_permitted(
    wide, live_server, x_sandbox
):
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    staff_user("checker", "accounts.view_profile", "accounts.check_token")
    log_in(wide, live_server, "checker", f"/admin/accounts/profile/{ada.profile_id}/change/")

    actions = wide.get_by_role("region", name="Act on this account's X token")
    expect(actions.get_by_role("button")).to_have_text(["Check with X"])
    actions.get_by_role("button", name="Check with X").click()

    expect(wide.locator(".messagelist")).to_contain_text("Check of 1 token started")
    run_queued_jobs()
    expect(wide.locator("#job-summary")).to_have_text("Check: 1 ok, 0 failed.")


def test_token_page_revoke_asks_the_same_confirmation_and_cancel_returns(
    wide, live_server, x_sandbox
):
    superuser()
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    token_page = f"/admin/accounts/xtoken/{ada.pk}/change/"
    log_in(wide, live_server, "boss", token_page)
    actions = wide.get_by_role("region", name="Act on this account's X token")
    expect(actions.get_by_role("button")).to_have_text(["Check with X", "Refresh", "Revoke at X…"])

    actions.get_by_role("button", name="Revoke at X…").click()
    expect(wide.get_by_role("heading", name="Revoke X tokens?")).to_be_visible()
    wide.get_by_role("link", name="No, take me back").click()
    assert wide.url.endswith(token_page)
    assert XToken.objects.get(pk=ada.pk).status == TokenStatus.ACTIVE

    actions.get_by_role("button", name="Revoke at X…").click()
    wide.get_by_role("button", name="Yes, revoke 1 token").click()
    run_queued_jobs()
    expect(wide.locator("#job-summary")).to_have_text("Revoke: 1 ok, 0 failed.")
    assert not access_token_is_live(x_sandbox, ada.access_token)
    assert BulkJob.objects.get().action == "revoke"


def test_no_buttons_without_permission_or_token(wide, live_server, x_sandbox):
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    staff_user("viewer", "accounts.view_profile", "accounts.view_xtoken")
    log_in(wide, live_server, "viewer", f"/admin/accounts/profile/{ada.profile_id}/change/")
    expect(wide.locator("#content-main")).to_be_visible()
    assert wide.locator(".token-actions").count() == 0


# Point 1: the model list staff use, grouped, with the dashboard on one screen ----------------


def sidebar_entries(page) -> list[str]:
    """Each group of the model list and its entries, as read on the page."""
    groups = page.locator("#app-list .module, #nav-sidebar .module")
    return [
        f"{group.locator('caption').text_content().strip()}: "
        + ", ".join(group.locator("th[scope=row]").all_inner_texts())
        for group in groups.all()
    ]


def test_index_groups_staff_models_and_hides_library_tables(wide, live_server, x_sandbox):
    superuser()
    sign_in_many(x_sandbox, 3)
    log_in(wide, live_server, "boss", "/admin/accounts/xtoken/")
    wide.locator("#action-toggle").check()
    wide.locator('select[name="action"]').select_option("check_tokens")
    wide.get_by_role("button", name="Go").click()
    expect(wide.locator("#job-progress")).to_be_visible()
    expected = [
        "Accounts: Profiles, Users, Groups",
        "X tokens: X tokens, Pending revocations",
        "Jobs and audit: Bulk token jobs, Audit events",
        "Security: Access attempts",
    ]
    assert sidebar_entries(wide) == expected, "the sidebar of every other page"
    wide.goto(f"{live_server.url}/admin/")

    assert sidebar_entries(wide) == expected
    for hidden in ("Email addresses", "Social accounts", "Social applications", "Task Results"):
        assert wide.get_by_role("link", name=hidden).count() == 0, hidden
    for shown in ("#dash-totals", "#dash-tokens", "#app-list"):
        box = wide.locator(shown).bounding_box()
        assert box["y"] + box["height"] <= WIDE["height"], f"{shown} is below the fold"
    recent = wide.locator("#recent-actions-module li")
    expect(recent).to_have_count(1)
    expect(recent).to_contain_text(re.compile(r"Job #\d+: check 3 tokens"))


def test_security_group_is_for_superusers_only(wide, live_server):
    staff_user("helper", "axes.view_accessattempt")
    log_in(wide, live_server, "helper")
    assert sidebar_entries(wide) == ["Accounts: Profiles", "X tokens: X tokens"]


def test_zero_counts_are_not_shown_as_alarms(wide, live_server):
    superuser()
    log_in(wide, live_server, "boss")
    health = wide.locator("#dash-tokens li")
    alarm = health.filter(has_text="Error").locator(".dash-count")
    quiet = health.filter(has_text="Revoked").locator(".dash-count")
    expect(alarm).to_have_text("0")
    color = "e => getComputedStyle(e).color"
    assert alarm.evaluate(color) == quiet.evaluate(color), "a zero is not red"


# Point 4: details ------------------------------------------------------------------------------


def background(locator) -> str:
    return locator.evaluate("e => getComputedStyle(e).backgroundColor")


def is_red(rgb: str) -> bool:
    red, green, blue = (int(part) for part in re.findall(r"\d+", rgb)[:3])
    return red > 150 and green < 80 and blue < 80


def test_revoke_confirmation_has_a_red_button_and_a_neutral_cancel(wide, live_server, x_sandbox):
    superuser()
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    log_in(wide, live_server, "boss", "/admin/accounts/xtoken/")
    wide.locator(f'input.action-select[value="{ada.pk}"]').check()
    wide.locator('select[name="action"]').select_option("revoke_tokens")
    wide.get_by_role("button", name="Go").click()

    assert is_red(background(wide.get_by_role("button", name="Yes, revoke 1 token")))
    assert not is_red(background(wide.get_by_role("link", name="No, take me back")))


@pytest.mark.parametrize("url", ["/admin/accounts/profile/", "/admin/accounts/xtoken/"])
def test_lists_fit_1440_with_readable_dates_and_only_x_accounts(wide, live_server, x_sandbox, url):
    superuser()
    sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    log_in(wide, live_server, "boss", url)

    results = wide.locator("#changelist .results")
    width, visible = results.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert width <= visible, "a column is cut off"
    table = wide.locator("#result_list").inner_text()
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", table), "a raw datetime"
    assert "hour from now" in table  # when ada's OAuth 2.0 token expires
    rows = wide.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)  # boss's own, empty profile is not an X account
    assert "boss" not in rows.all_inner_texts()


def test_audit_trail_and_job_page_name_each_method_once(wide, live_server, x_sandbox):
    superuser()
    sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    sign_in(x_sandbox, "grace_hopper", TokenKind.OAUTH1)
    log_in(wide, live_server, "boss", "/admin/accounts/xtoken/")
    wide.locator("#action-toggle").check()
    wide.locator('select[name="action"]').select_option("check_tokens")
    wide.get_by_role("button", name="Go").click()
    run_queued_jobs()
    expect(wide.locator("#job-summary")).to_be_visible()
    job_rows = wide.locator("#job-items tbody").inner_text()
    wide.goto(f"{live_server.url}/admin/admin_ext/auditevent/")

    audit = wide.locator("#result_list").inner_text()
    filters = wide.locator("#changelist-filter").inner_text()
    for text in (job_rows, audit, filters):
        assert "OAuth 1.0a" in text and "OAuth 2.0" in text
        assert "oauth1" not in text and "oauth2" not in text


# Point 5: the export form ------------------------------------------------------------------------


def test_export_form_defaults_to_csv_and_reads_like_the_admin(wide, live_server, x_sandbox):
    superuser()
    sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    log_in(wide, live_server, "boss", "/admin/accounts/profile/export/")

    file_format = wide.get_by_label("File format")
    expect(file_format).to_have_value("0")
    options = file_format.locator("option").all_inner_texts()
    assert options == ["CSV", "Excel (XLSX)", "JSON"], "no '---' choice"
    export = wide.get_by_role("button", name="Export", exact=True)
    assert export.get_attribute("value") == "Export"
    assert export.evaluate("e => getComputedStyle(e).textTransform") == "none", "not SUBMIT"
    expect(wide.get_by_role("heading", name="Columns")).to_be_visible()

    with wide.expect_download() as download:
        export.click()
    assert download.value.suggested_filename.endswith(".csv")


# Point 6: accessibility ------------------------------------------------------------------------

SERIOUS = ("serious", "critical")


def axe_violations(page) -> list[dict]:
    """axe-core's violations on the page as shown (axe-core ships inside the wheel)."""
    from axe_playwright_python.sync_playwright import Axe

    return Axe().run(page).response["violations"]


def serious(violations: list[dict]) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}) x{len(v['nodes'])}: "
        + " | ".join(node["html"][:100] for node in v["nodes"][:3])
        for v in violations
        if v["impact"] in SERIOUS
    ]


def test_every_staff_and_sign_in_page_passes_axe(wide, live_server, x_sandbox):
    from tests.test_signin_browser import sign_in_with_x

    boss = superuser()
    ada = sign_in(x_sandbox, "ada_lovelace", TokenKind.OAUTH2)
    results: dict[str, list[dict]] = {}

    def audit(name: str) -> None:
        wide.wait_for_load_state("networkidle")
        results[name] = axe_violations(wide)

    wide.goto(f"{live_server.url}/login/")
    audit("sign-in page /login/")
    sign_in_with_x(wide, live_server.url, "OAuth 1.0a", "grace_hopper")
    audit("profile /profile/")
    wide.context.clear_cookies()

    wide.goto(f"{live_server.url}/admin/login/")
    audit("admin sign-in")
    log_in(wide, live_server, boss.username)
    audit("dashboard /admin/")
    for name, url in (
        ("profiles list", "/admin/accounts/profile/"),
        ("profile page", f"/admin/accounts/profile/{ada.profile_id}/change/"),
        ("X tokens list", "/admin/accounts/xtoken/"),
        ("token page", f"/admin/accounts/xtoken/{ada.pk}/change/"),
        ("audit events", "/admin/admin_ext/auditevent/"),
        ("export form", "/admin/accounts/profile/export/"),
        ("delete confirmation", f"/admin/accounts/xtoken/{ada.pk}/delete/"),
    ):
        wide.goto(live_server.url + url)
        audit(name)
    wide.goto(f"{live_server.url}/admin/accounts/xtoken/{ada.pk}/change/")
    wide.get_by_role("button", name="Revoke at X…").click()
    audit("revoke confirmation")
    wide.get_by_role("link", name="No, take me back").click()
    wide.get_by_role("button", name="Check with X").click()
    audit("job page (queued)")
    run_queued_jobs()
    expect(wide.locator("#job-summary")).to_be_visible()
    audit("job page (done, rows updated live)")
    wide.goto(f"{live_server.url}/admin/admin_ext/bulkjob/")
    audit("bulk jobs list")

    for name, violations in results.items():
        found = ", ".join(f"{v['id']}({v['impact']})" for v in violations) or "none"
        print(f"axe: {name}: {found}")
    problems = {name: serious(v) for name, v in results.items() if serious(v)}
    assert problems == {}


def tab_to(page, describe: str, matches: str, limit: int = 80) -> None:
    """Press Tab until the focused element satisfies the JS predicate `matches`."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(e => {matches})(document.activeElement)"):
            return
    raise AssertionError(f"Tab never reached {describe}")


def test_sign_in_and_an_admin_action_with_the_keyboard_alone(page, live_server, x_sandbox):
    page.set_viewport_size(WIDE)
    page.goto(f"{live_server.url}/login/")
    tab_to(page, "the OAuth 2.0 button", "e.textContent.includes('Sign in with X (OAuth 2.0)')")
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Authorize app").wait_for()
    tab_to(page, "a persona", "e.name === 'persona'")
    page.keyboard.press("Space")
    chosen = page.evaluate("document.activeElement.value")
    tab_to(page, "Authorize app", "e.textContent.trim() === 'Authorize app'")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/profile/")
    expect(page.get_by_role("link", name=f"@{chosen}")).to_be_visible()

    superuser()
    token = XToken.objects.get(profile__screen_name=chosen)
    page.context.clear_cookies()
    log_in(page, live_server, "boss", f"/admin/accounts/xtoken/{token.pk}/change/")
    page.get_by_role("button", name="Check with X").wait_for()
    tab_to(page, "Check with X", "e.textContent.trim() === 'Check with X'")
    page.keyboard.press("Enter")
    expect(page.locator(".messagelist")).to_contain_text("Check of 1 token started")
    run_queued_jobs()
    expect(page.locator("#job-summary")).to_have_text("Check: 1 ok, 0 failed.")
