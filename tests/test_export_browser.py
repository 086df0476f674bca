"""The export page's field picker works in Chromium under our strict CSP."""

import pytest
from playwright.sync_api import expect

from accounts.models import Profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "export-pw-4821"


def test_select_all_toggle_unticks_and_reticks_every_field(page, live_server, django_user_model):
    django_user_model.objects.create_superuser("exporter", password=PASSWORD)
    Profile.objects.filter(user__username="exporter").update(screen_name="exporter_x")
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.goto(f"{live_server.url}/admin/login/?next=/admin/accounts/profile/export/")
    page.get_by_label("Username").fill("exporter")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    fields = page.locator('.selectable-field-export-row input[type="checkbox"]')
    expect(fields.first).to_be_checked()
    assert fields.count() >= 10
    toggle = page.locator("input.select-toggle")
    toggle.uncheck()
    assert all(not fields.nth(i).is_checked() for i in range(fields.count()))
    toggle.check()
    assert all(fields.nth(i).is_checked() for i in range(fields.count()))
    assert violations == []
