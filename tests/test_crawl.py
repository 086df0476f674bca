"""Every URL the site routes, as every kind of visitor, with hostile input (issue 15).

The URLs come from the URL resolver itself, so a page added tomorrow is crawled
tomorrow: every admin changelist, add, change, history and delete page, every custom
admin view (job progress, exports, the dashboard) and every allauth page still routed.
Path parameters get the ids of real objects made here and hostile ones (`abc`, NUL,
invalid UTF-8, huge numbers); query strings and bodies get NUL, invalid UTF-8, 10 kB
values, junk sort/page numbers and unknown list filters; every changelist gets every
admin action name posted to it.

Two things must hold for every answer:
- it is below 500;
- nobody gets what their role does not give them: anonymous visitors and people
  signed in with X get no admin page but the login; staff get no page of a model they
  may not view, no add/delete page and no action they lack the permission for (403);
  staff who may not view profiles never see an account's name.

Every request runs in a savepoint that is rolled back, so a POST that deletes, logs
out or runs an action leaves the next request the same world. Token actions talk to
the X sandbox; revoke is only ever asked for (its confirmation page), never confirmed.
"""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount, SocialApp
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from accounts.models import Profile, TokenKind, XToken
from admin_ext import jobs
from admin_ext.models import ExportJob, TokenAction
from admin_ext.tasks import enqueue_job
from tests.test_admin_support import sign_in

pytestmark = pytest.mark.django_db

VICTIM = "ada_lovelace"  # an account whose name only profile viewers may see
X_USER = "grace_hopper"  # the person signed in with X

TEN_KB = "A" * 10_240
HOSTILE_VALUES = {"nul": "%00", "bad-utf8": "%ff%fe", "10kB": TEN_KB, "junk": "-9.x'\"%25_"}
# Each list filter alone (one invalid filter stops the list before the next is read).
FILTER_VALUES = ("nul", "10kB", "junk")
HOSTILE_IDS = ["abc", "%00", "99999999999999999999"]
# Parameters some view of the site (or Django's admin) reads from the query string.
COMMON_PARAMS = [
    "q",
    "o",
    "p",
    "e",
    "page",
    "status",
    "next",
    "_changelist_filters",
    "_popup",
    "all",
    "app_label",
    "model_name",
    "field_name",
    "term",
    "oauth_token",
    "oauth_verifier",
    "code",
    "state",
    "error",
    "process",
]
QUERY_VARIANTS = {
    "plain": "",
    **{
        f"all-params-{label}": "&".join(f"{name}={value}" for name in COMMON_PARAMS)
        for label, value in HOSTILE_VALUES.items()
    },
    "sort-page-junk": "o=99.-99.abc&p=999999&page=-1&all=",
    "unknown-filter": "no_such_filter__exact=1",
    "to-field": "_to_field=password",
}
FORM_FIELDS = [
    "username",
    "password",
    "password1",
    "password2",
    "old_password",
    "new_password1",
    "new_password2",
    "email",
    "login",
    "code",
    "key",
    "format",
    "selected",
    "fields",
    "next",
    "q",
]


def mixed_body(shift: int) -> str:
    """Every form field some page reads, each given one of the hostile values."""
    values = list(HOSTILE_VALUES.values())
    return "&".join(
        f"{name}={values[(index + shift) % len(values)]}" for index, name in enumerate(FORM_FIELDS)
    )


# Two bodies, so that every field gets two different hostile values.
POST_BODIES = {"mixed body": mixed_body(0), "shifted body": mixed_body(2)}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


# Roles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    name: str
    staff: bool = False
    superuser: bool = False
    perms: tuple[str, ...] = ()
    signed_in_with_x: bool = False
    all_view_perms: bool = False


ROLES = [
    Role("anonymous"),
    Role("x_user", signed_in_with_x=True),
    Role("view_only_staff", staff=True, all_view_perms=True),
    Role("check_token_staff", staff=True, perms=("accounts.check_token",)),
    Role("export_staff", staff=True, perms=("accounts.export_profile",)),
    # May follow bulk jobs but not look at profiles: sees jobs, never account names.
    Role("job_watcher", staff=True, perms=("admin_ext.view_bulkjob", "accounts.check_token")),
    Role("superuser", staff=True, superuser=True),
]


def make_user(role: Role, x_sandbox):
    """The user a role signs in as (None for anonymous)."""
    if role.name == "anonymous":
        return None
    if role.signed_in_with_x:
        return sign_in(x_sandbox, X_USER, TokenKind.OAUTH1).profile.user
    user = get_user_model().objects.create_user(
        f"crawl_{role.name}", f"{role.name}@example.com", "crawl-pw-123456"
    )
    user.is_staff = role.staff
    user.is_superuser = role.superuser
    user.save()
    codenames = list(role.perms)
    if role.all_view_perms:
        codenames += [
            f"{model._meta.app_label}.view_{model._meta.model_name}"
            for model in admin.site._registry
        ]
    for name in codenames:
        app_label, codename = name.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return get_user_model().objects.get(pk=user.pk)


# The world the crawl runs in ---------------------------------------------------------------


@dataclass
class World:
    users: dict[str, object]
    object_ids: dict[type, list[str]]
    export_job_ids: list[str]
    content_type_id: str


def build_world(x_sandbox) -> World:
    """One object of every model the admin shows, and a user for every role."""
    users = {role.name: make_user(role, x_sandbox) for role in ROLES}
    victim_token = sign_in(x_sandbox, VICTIM, TokenKind.OAUTH2)
    victim = victim_token.profile
    victim.name = "Ada Victim"
    victim.save()
    job = jobs.create_job(
        TokenAction.CHECK, XToken.objects.filter(pk=victim_token.pk), actor=users["superuser"]
    )
    jobs.run_job(job)
    enqueue_job(jobs.create_job(TokenAction.CHECK, XToken.objects.none()))
    x_user = users["x_user"]
    EmailAddress.objects.create(user=x_user, email="grace@example.com")
    SocialAccount.objects.create(user=x_user, provider="twitter", uid="1000000002")
    SocialApp.objects.create(provider="twitter", name="db app", client_id="id", secret="s")
    Group.objects.create(name="crawlers")
    AccessAttempt.objects.create(
        username="someone", ip_address="127.0.0.1", failures_since_start=1
    )
    AccessLog.objects.create(username="someone", ip_address="127.0.0.1")
    AccessFailureLog.objects.create(username="someone", ip_address="127.0.0.1")
    export_job_ids = [
        str(ExportJob.objects.create(requested_by=users[name], summary="all profiles").pk)
        for name in ("superuser", "export_staff")
    ]
    object_ids = {}
    for model in admin.site._registry:
        first = model._default_manager.order_by("pk").values_list("pk", flat=True).first()
        object_ids[model] = [quote(str(first))] if first is not None else []
    return World(
        users=users,
        object_ids=object_ids,
        export_job_ids=export_job_ids,
        content_type_id=str(ContentType.objects.get_for_model(Profile).pk),
    )


# URLs -----------------------------------------------------------------------------------------


def routes(patterns=None, prefix: str = "") -> Iterator[str]:
    """Every routed URL as its pattern text ('admin/auth/user/<path:object_id>/change/')."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from routes(pattern.url_patterns, text)
        elif isinstance(pattern, URLPattern):
            yield text


PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>([^)]*)\)")


@dataclass(frozen=True)
class Target:
    path: str
    route: str
    model: type | None
    hostile: bool  # a path parameter holds a hostile value

    @property
    def is_changelist(self) -> bool:
        return self.model is not None and self.path == admin_prefix(self.model)


def admin_prefix(model: type) -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/"


def model_of(route: str) -> type | None:
    for model in admin.site._registry:
        if ("/" + route).startswith(admin_prefix(model)):
            return model
    return None


def real_values(name: str, options: str, model: type | None, world: World) -> list[str]:
    if name == "app_label":
        return options.split("|")
    if name == "job_id":
        return world.export_job_ids
    if name == "content_type_id":
        return [world.content_type_id]
    if name in ("object_id", "id"):
        return world.object_ids.get(model or Profile, []) or ["1"]
    if name == "url":
        return ["no-such-page/"]
    return ["abc"]


def fill_route(route: str, params: list[tuple[str, str, str]], values: dict[str, str]) -> str:
    path = route
    for placeholder, name, _ in params:
        path = path.replace(placeholder, values[name], 1)
    return "/" + path.replace("^", "").replace("$", "")


def targets(world: World) -> Iterator[Target]:
    """Each route with real ids, then with each parameter in turn given a hostile value."""
    for route in routes():
        model = model_of(route)
        params = [
            (match.group(0), match.group(1) or match.group(2), match.group(3) or "")
            for match in PARAMETER.finditer(route)
        ]

        def fill(values: dict[str, str], route=route, params=params) -> str:
            return fill_route(route, params, values)

        choices = {name: real_values(name, options, model, world) for _, name, options in params}
        first = {name: values[0] for name, values in choices.items()}
        for name, values in choices.items():
            for value in values[1:]:
                yield Target(fill({**first, name: value}), route, model, hostile=False)
        yield Target(fill(first), route, model, hostile=False)
        for name in choices:
            for value in HOSTILE_IDS:
                yield Target(fill({**first, name: value}), route, model, hostile=True)


def filter_parameters(model: type, superuser) -> list[str]:
    """The query parameters of every list filter (and date drill-down) on a changelist."""
    model_admin = admin.site._registry[model]
    request = RequestFactory().get(admin_prefix(model))
    request.user = superuser
    changelist = model_admin.get_changelist_instance(request)
    names = [name for spec in changelist.filter_specs for name in spec.expected_parameters()]
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    return names


# Requests ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    method: str
    target: Target
    query: str = ""
    body: str = ""
    label: str = "plain"
    action: str = ""  # the admin action a changelist POST names
    own_action: bool = False  # ... and it is one of that list's own actions

    @property
    def url(self) -> str:
        return f"{self.target.path}?{self.query}" if self.query else self.target.path

    def __str__(self) -> str:
        return f"{self.method} {self.url[:120]} [{self.label}]"


def attempts(world: World) -> list[list[Attempt]]:
    """Per target, the requests to send it: a plain GET first, then the hostile ones."""
    superuser = world.users["superuser"]
    own_actions = {
        model: set(model_admin.get_actions(as_request(superuser)))
        for model, model_admin in admin.site._registry.items()
    }
    action_names = sorted(set().union(*own_actions.values()) | {"no_such_action"})
    plan = []
    for target in targets(world):
        group = [Attempt("GET", target)]
        bodies = list(POST_BODIES.items())[: 1 if target.hostile else None]
        group += [Attempt("POST", target, body=body, label=label) for label, body in bodies]
        if not target.hostile:
            group += [
                Attempt("GET", target, query=query, label=label)
                for label, query in QUERY_VARIANTS.items()
                if query
            ]
        if target.is_changelist and not target.hostile:
            group += [
                Attempt("GET", target, query=f"{name}={value}", label=f"{name} {label}")
                for name in filter_parameters(target.model, superuser)
                for label, value in HOSTILE_VALUES.items()
                if label in FILTER_VALUES
            ]
            selected = world.object_ids.get(target.model, ["1"])[0]
            group += [
                Attempt(
                    "POST",
                    target,
                    body=f"action={action}&_selected_action={selected}&index=0&select_across=0",
                    label=action,
                    action=action,
                    own_action=action in own_actions[target.model],
                )
                for action in action_names
            ]
        plan.append(group)
    return plan


def as_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


# Rules ------------------------------------------------------------------------------------------


def may_view(user, model: type) -> bool:
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
        f"{opts.app_label}.change_{opts.model_name}"
    )


def action_permitted(action: str) -> Callable[[object, type], bool]:
    """Who may run each admin action (besides viewing the list it is run from)."""
    token_action = {
        "check_tokens": "accounts.check_token",
        "refresh_tokens": "accounts.refresh_token",
        "revoke_tokens": "accounts.revoke_token",
    }
    if action in token_action:
        return lambda user, model: user.has_perm(token_action[action])
    if action == "export_profiles":
        return lambda user, model: user.has_perm("accounts.export_profile")
    if action == "resume_jobs":
        return lambda user, model: any(user.has_perm(p) for p in token_action.values())
    if action == "delete_selected":
        return lambda user, model: user.has_perm(
            f"{model._meta.app_label}.delete_{model._meta.model_name}"
        )
    # Other apps' actions (allauth's, axes') change or delete rows: view is not enough.
    return lambda user, model: user.has_perm(
        f"{model._meta.app_label}.change_{model._meta.model_name}"
    )


def is_success(status: int) -> bool:
    return 200 <= status < 300


def body_text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


def violation(attempt: Attempt, role: Role, user, response) -> str | None:
    """What, if anything, this answer gives away that the role should not have."""
    path = attempt.target.path
    status = response.status_code
    in_admin = path.startswith("/admin/") and path != "/admin/login/"
    if not (role.staff and user.is_active):
        if in_admin and is_success(status):
            return "a non-staff visitor got an admin page"
        if attempt.action and not (status == 302 and "/admin/login/" in response["Location"]):
            return "a non-staff visitor's admin action was not sent to the admin login"
    if role.name == "anonymous" and path.startswith("/profile/") and is_success(status):
        return "an anonymous visitor got a profile page"
    if not role.staff or role.superuser:
        return None
    model = attempt.target.model
    if model is not None:
        if not may_view(user, model) and is_success(status):
            return f"staff without view permission on {model._meta.label} got the page"
        if path.endswith(("/add/", "/delete/")) and is_success(status):
            return "view-only staff got an add or delete page"
        exporting = path.startswith(admin_prefix(Profile) + "export/")
        if exporting and is_success(status) and not user.has_perm("accounts.export_profile"):
            return "staff without the export permission got an export page"
    if attempt.own_action:
        allowed = may_view(user, model) and action_permitted(attempt.action)(user, model)
        if not allowed and status != 403:
            return f"staff without permission for {attempt.action} did not get 403"
    if is_success(status) and not user.has_perm("accounts.view_profile"):
        text = body_text(response)
        if VICTIM in text or "Ada Victim" in text:
            return "staff without view_profile saw an account's name"
    return None


# The crawl -------------------------------------------------------------------------------------


@dataclass
class Tally:
    combinations: int = 0
    successes: int = 0
    urls: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def summary(self, routes_count: int) -> str:
        return (
            f"crawl: {self.combinations} URL x role x input combinations "
            f"({len(self.urls)} URLs from {routes_count} routes, {len(ROLES)} roles), "
            f"{self.successes} answered 2xx, {len(self.errors)} answered >= 500, "
            f"{len(self.leaks)} gave a role what it should not have"
        )


def send(client: Client, attempt: Attempt):
    """One request in a savepoint that is rolled back: the next one sees the same world."""
    with transaction.atomic():
        if attempt.method == "GET":
            response = client.get(attempt.url)
        else:
            response = client.post(attempt.url, attempt.body, content_type=FORM_CONTENT_TYPE)
        transaction.set_rollback(True)
    return response


LOGIN_PAGES = {"/login/", "/admin/login/", "/accounts/login/"}


def is_gate(response) -> bool:
    """Refused before the view read anything: 403, or sent to a login page."""
    if response.status_code == 403:
        return True
    return response.status_code == 302 and urlsplit(response["Location"]).path in LOGIN_PAGES


def crawl_as(role: Role, user, plan: list[list[Attempt]], tally: Tally) -> None:
    """Send every attempt as `role`. Where the plain GET of a target is refused at the
    gate, the target's other GETs would meet the same gate and are skipped; its
    POSTs are still sent (a POST can take another path through a view)."""
    client = Client(raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    session_cookie = client.cookies.get(settings.SESSION_COOKIE_NAME)
    for group in plan:
        gated = False
        for attempt in group:
            if gated and attempt.method == "GET":
                continue
            if session_cookie is not None:
                # A POST may have logged out or rotated the session: every request starts
                # signed in as the role.
                client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie.value
            response = record(client, role, user, attempt, tally)
            gated = gated or (attempt is group[0] and response is not None and is_gate(response))


def record(client: Client, role: Role, user, attempt: Attempt, tally: Tally):
    tally.combinations += 1
    tally.urls.add(attempt.target.path)
    try:
        response = send(client, attempt)
    except Exception as exc:
        tally.errors.append(f"{role.name}: {attempt}: {exc!r}")
        return None
    if response.status_code >= 500:
        exc_info = getattr(response, "exc_info", None)
        reason = repr(exc_info[1])[:200] if exc_info else ""
        tally.errors.append(f"{role.name}: {attempt} -> {response.status_code} {reason}")
        return response
    tally.successes += is_success(response.status_code)
    problem = violation(attempt, role, user, response)
    if problem:
        tally.leaks.append(f"{role.name}: {attempt} -> {response.status_code}: {problem}")
    return response


@pytest.fixture
def site_uses_sandbox(settings, x_sandbox):
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    # Staff and admin login pages check passwords thousands of times here; the
    # production hasher's deliberate slowness would be most of the crawl's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The test client's host is "testserver": X must accept its sign-in callbacks.
    x_sandbox.config(callbacks=["http://testserver:*"])
    return x_sandbox


def test_every_routed_url_as_every_role_with_hostile_input(site_uses_sandbox, capsys):
    world = build_world(site_uses_sandbox)
    plan = attempts(world)
    tally = Tally()
    for role in ROLES:
        crawl_as(role, world.users[role.name], plan, tally)
    summary = tally.summary(len(list(routes())))
    with capsys.disabled():
        print("\n" + summary)
    assert not tally.errors, summary + "\n" + "\n".join(tally.errors[:60])
    assert not tally.leaks, summary + "\n" + "\n".join(tally.leaks[:60])
    assert tally.successes > len(ROLES) * len(admin.site._registry), "the crawl reached pages"


def test_admin_login_with_a_10_kb_username_answers_below_500(settings):
    """axes records the failed attempt; on PostgreSQL a 10 kB username must still fit."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = Client(raise_request_exception=False)

    with transaction.atomic():
        response = client.post("/admin/login/", {"username": TEN_KB, "password": "x"})
        transaction.set_rollback(True)

    assert response.status_code < 500
