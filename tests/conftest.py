"""Shared fixtures: a real headless Chromium (Debian's, driven by Playwright) and the X sandbox."""

import os
import uuid

import pytest

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM
# calls from a thread with a running loop unless told that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytest_plugins = ["tests.sandbox"]

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def own_redis_keys():
    """With REDIS_URL, this run's session keys in Redis carry a prefix of their own.

    Several runs (CI, developers) may share one Redis: none may read another's
    sessions or be disturbed by them. The keys are deleted when the run ends.
    """
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        yield
        return
    import redis
    from django.conf import settings
    from django.test import override_settings

    prefix = f"test-{uuid.uuid4().hex}"
    caches = {alias: dict(config) for alias, config in settings.CACHES.items()}
    caches[settings.SESSION_CACHE_ALIAS]["KEY_PREFIX"] = prefix
    with override_settings(CACHES=caches):
        yield
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run; each test gets its own context through `page`."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}; `.ci/run` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def mobile_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()
