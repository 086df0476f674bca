"""The sandbox's control API, fault injection, load behaviour and independence."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from requests_oauthlib import OAuth1

from tests.sandbox import PROJECT_ROOT, SandboxControl, SandboxProcess, TimeoutSession
from x_sandbox.personas import hostile_persona

KEY, SECRET = "sandbox-consumer-key", "sandbox-consumer-secret"
VERIFY = "/1.1/account/verify_credentials.json"
TOKEN = "/2/oauth2/token"
http = TimeoutSession()


def oauth1_auth(x_sandbox: SandboxControl, screen_name: str = "ada_lovelace") -> OAuth1:
    token = x_sandbox.issue_tokens(screen_name, "oauth1")[0]
    return OAuth1(KEY, SECRET, token["oauth_token"], token["oauth_token_secret"])


def bearer(x_sandbox: SandboxControl, screen_name: str = "ada_lovelace") -> dict[str, str]:
    token = x_sandbox.issue_tokens(screen_name, "oauth2")[0]
    return {"Authorization": "Bearer " + token["access_token"]}


def test_builtin_personas(x_sandbox: SandboxControl) -> None:
    personas = {p["screen_name"]: p for p in x_sandbox.personas()}
    assert {name: p["id"] for name, p in personas.items()} == {
        "ada_lovelace": "1000000001",
        "grace_hopper": "1000000002",
        "private_pat": "1000000003",
        "formula_fred": "1000000004",
        "hostile_harry": "1000000005",
    }
    assert personas["grace_hopper"]["location"] == "" and personas["grace_hopper"]["url"] is None
    assert personas["private_pat"]["protected"] is True
    assert personas["formula_fred"]["description"].startswith("=")


def test_the_hostile_persona_comes_out_exactly_as_given_in_both_shapes(
    x_sandbox: SandboxControl,
) -> None:
    harry = hostile_persona()
    v1 = http.get(x_sandbox.base_url + VERIFY, auth=oauth1_auth(x_sandbox, "hostile_harry"))
    fields = "created_at,description,location,public_metrics,url"
    v2 = http.get(
        x_sandbox.base_url + "/2/users/me",
        params={"user.fields": fields},
        headers=bearer(x_sandbox, "hostile_harry"),
    )

    v1_user, v2_user = v1.json(), v2.json()["data"]
    assert "\\u0000" in v1.text and "\\u202e" in v2.text
    for user in (v1_user, v2_user):
        assert (user["name"], user["location"]) == (harry.name, harry.location)
        assert (user["description"], user["url"]) == (harry.description, harry.url)
    assert len(harry.description.encode()) > 10_000 and "\x00" in harry.name
    assert (v1_user["followers_count"], v1_user["friends_count"]) == (2**40, -7)
    assert v2_user["public_metrics"] == {
        "followers_count": 2**40,
        "following_count": -7,
        "tweet_count": 2**40,
        "listed_count": -1,
    }


def test_added_persona_signs_in(x_sandbox: SandboxControl) -> None:
    added = x_sandbox.add_personas({"screen_name": "new_nora", "name": "Nora <b>New</b>"})
    assert added[0]["id"] == "2000000001"
    response = http.get(x_sandbox.base_url + "/2/users/me", headers=bearer(x_sandbox, "new_nora"))
    assert response.json()["data"] == {
        "id": "2000000001",
        "name": "Nora <b>New</b>",
        "username": "new_nora",
    }


def test_bulk_add_of_10000_personas_is_fast(x_sandbox: SandboxControl) -> None:
    people = [{"screen_name": f"bulk_{n}", "name": f"Bulk {n}"} for n in range(10_000)]
    started = time.perf_counter()
    x_sandbox.add_personas(people)
    assert time.perf_counter() - started < 5
    assert len(x_sandbox.personas()) == 10_005


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "no screen name"},
        {"screen_name": "ada_lovelace"},
        {"screen_name": "x", "folowers": 1},
    ],
)
def test_bad_personas_are_refused(x_sandbox: SandboxControl, bad: dict) -> None:
    response = http.post(x_sandbox.base_url + "/_sandbox/personas", json=bad)
    assert response.status_code == 400
    assert len(x_sandbox.personas()) == 5


def test_issue_10000_oauth2_tokens(x_sandbox: SandboxControl) -> None:
    started = time.perf_counter()
    tokens = x_sandbox.issue_tokens("ada_lovelace", "oauth2", count=10_000)
    assert time.perf_counter() - started < 5
    assert len({t["access_token"] for t in tokens}) == 10_000
    assert all(t["refresh_token"] for t in tokens)


def test_status_fault_fires_the_given_number_of_times(x_sandbox: SandboxControl) -> None:
    x_sandbox.fault(TOKEN, status=503, times=3)
    data = {"grant_type": "refresh_token", "refresh_token": "nope"}
    auth = ("sandbox-client-id", "sandbox-client-secret")
    statuses = [
        http.post(x_sandbox.base_url + TOKEN, data=data, auth=auth).status_code for _ in range(4)
    ]
    assert statuses == [503, 503, 503, 400]


def test_delay_fault(x_sandbox: SandboxControl) -> None:
    x_sandbox.fault(VERIFY, delay_ms=300)
    auth = oauth1_auth(x_sandbox)
    started = time.perf_counter()
    assert http.get(x_sandbox.base_url + VERIFY, auth=auth).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_late_fault_commits_the_refresh_and_answers_after_the_client_gave_up(
    x_sandbox: SandboxControl,
) -> None:
    issued = x_sandbox.issue_tokens("ada_lovelace", "oauth2")[0]
    x_sandbox.fault(TOKEN, late_ms=1500)
    data = {"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]}
    auth = ("sandbox-client-id", "sandbox-client-secret")
    with pytest.raises(requests.Timeout):
        requests.post(x_sandbox.base_url + TOKEN, data=data, auth=auth, timeout=0.3)
    refresh_tokens = x_sandbox.tokens()["oauth2_refresh_tokens"]
    spent = {r["token"]: r["spent"] for r in refresh_tokens}
    # The old refresh token is spent and a new pair exists that the client never saw.
    assert spent[issued["refresh_token"]] is True
    assert len(refresh_tokens) == 2 and list(spent.values()).count(False) == 1
    assert http.post(x_sandbox.base_url + TOKEN, data=data, auth=auth).status_code == 400


@pytest.mark.parametrize(
    "fault",
    [{"late_ms": 500, "status": 503}, {"late_ms": 500, "drop": True}, {"late_ms": "1"}],
)
def test_late_fault_refuses_what_it_cannot_mean(x_sandbox: SandboxControl, fault: dict) -> None:
    response = http.post(x_sandbox.base_url + "/_sandbox/faults", json={"path": TOKEN, **fault})
    assert response.status_code == 400


def test_drop_fault_closes_the_connection(x_sandbox: SandboxControl) -> None:
    x_sandbox.fault("/2/users/me", drop=True)
    headers = bearer(x_sandbox)
    with pytest.raises(requests.ConnectionError):
        requests.get(x_sandbox.base_url + "/2/users/me", headers=headers, timeout=5)
    assert http.get(x_sandbox.base_url + "/2/users/me", headers=headers).status_code == 200


def test_clear_faults(x_sandbox: SandboxControl) -> None:
    x_sandbox.fault("/2/users/me", status=500, times=5)
    x_sandbox.clear_faults()
    assert (
        http.get(x_sandbox.base_url + "/2/users/me", headers=bearer(x_sandbox)).status_code == 200
    )


def test_call_log_has_no_query_strings_or_secrets(x_sandbox: SandboxControl) -> None:
    auth = oauth1_auth(x_sandbox)
    http.get(x_sandbox.base_url + VERIFY, params={"include_email": "true"}, auth=auth)
    calls = x_sandbox.calls()
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [("GET", VERIFY, 200)]
    logged = repr(calls)
    assert all(secret not in logged for secret in x_sandbox.secrets())


def test_secrets_lists_everything_issued(x_sandbox: SandboxControl) -> None:
    oauth1 = x_sandbox.issue_tokens("grace_hopper", "oauth1")[0]
    oauth2 = x_sandbox.issue_tokens("grace_hopper", "oauth2")[0]
    secrets = set(x_sandbox.secrets())
    assert {oauth1["oauth_token"], oauth1["oauth_token_secret"]} <= secrets
    assert {oauth2["access_token"], oauth2["refresh_token"]} <= secrets


def test_reset_restores_a_fresh_sandbox(x_sandbox: SandboxControl) -> None:
    x_sandbox.add_personas({"screen_name": "temp"})
    x_sandbox.issue_tokens("ada_lovelace", "oauth2")
    x_sandbox.config(rate_limit=1)
    x_sandbox.advance_clock(999)
    x_sandbox.reset()
    assert len(x_sandbox.personas()) == 5
    assert x_sandbox.secrets() == [] and x_sandbox.calls() == []
    assert x_sandbox.config()["rate_limit"] == 75


def test_a_call_still_in_flight_at_reset_stays_out_of_the_new_call_log(
    x_sandbox: SandboxControl,
) -> None:
    # The next test's log must not show a call the previous test left waiting on a delay.
    x_sandbox.fault(VERIFY, delay_ms=500)
    auth = oauth1_auth(x_sandbox)
    with ThreadPoolExecutor(1) as pool:
        slow_call = pool.submit(http.get, x_sandbox.base_url + VERIFY, auth=auth)
        time.sleep(0.2)
        x_sandbox.reset()
        # It finishes after the reset, which forgot the token it was signed with.
        assert slow_call.result().status_code == 401
    assert x_sandbox.calls() == []
    assert http.get(x_sandbox.base_url + "/nowhere").status_code == 404
    assert [(c["path"], c["status"]) for c in x_sandbox.calls()] == [("/nowhere", 404)]


def test_config_changes_the_rate_limit(x_sandbox: SandboxControl) -> None:
    x_sandbox.config(rate_limit=2)
    auth = oauth1_auth(x_sandbox)
    statuses = [http.get(x_sandbox.base_url + VERIFY, auth=auth).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_every_response_has_rate_limit_headers(x_sandbox: SandboxControl) -> None:
    for response in (
        http.get(x_sandbox.base_url + "/nowhere"),
        http.post(x_sandbox.base_url + TOKEN),
        http.get(x_sandbox.base_url + "/_sandbox/personas"),
    ):
        assert {"x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset"} <= {
            name.lower() for name in response.headers
        }


def test_200_concurrent_api_calls(x_sandbox: SandboxControl) -> None:
    x_sandbox.config(rate_limit=10_000)
    auth = oauth1_auth(x_sandbox)
    headers = bearer(x_sandbox)

    def call(n: int) -> int:
        with TimeoutSession() as client:
            if n % 2:
                return client.get(x_sandbox.base_url + VERIFY, auth=auth).status_code
            return client.get(x_sandbox.base_url + "/2/users/me", headers=headers).status_code

    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(call, range(200)))
    assert statuses == [200] * 200


def test_keep_alive_connection_reuse(x_sandbox: SandboxControl) -> None:
    headers = bearer(x_sandbox)
    with TimeoutSession() as client:
        for _ in range(50):
            assert client.get(x_sandbox.base_url + "/2/users/me", headers=headers).ok


def test_latency_option_delays_api_calls_only() -> None:
    with SandboxProcess(latency_ms=200) as process:
        control = SandboxControl(process.base_url)
        started = time.perf_counter()
        control.personas()
        assert time.perf_counter() - started < 0.2
        token = control.issue_tokens("ada_lovelace", "oauth2")[0]["access_token"]
        started = time.perf_counter()
        response = http.get(
            process.base_url + "/2/users/me", headers={"Authorization": "Bearer " + token}
        )
        assert response.ok and time.perf_counter() - started >= 0.2


def test_sandbox_does_not_import_the_site_or_django() -> None:
    code = (
        "import sys, x_sandbox.app, x_sandbox.__main__;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'accounts', 'admin_ext')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
