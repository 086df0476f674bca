"""The sandbox's whole memory: personas, issued credentials, faults, clock and call log.

Everything lives in one object behind one lock because the server runs a thread
per connection and X's single-use rules (verifiers, codes, refresh tokens,
nonces) only hold if "check and spend" is atomic. Methods here enforce storage
rules (single use, expiry, revocation); the wire formats live in oauth1/oauth2.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from x_sandbox.personas import Persona, builtin_personas, validate_fields

RATE_WINDOW_SECONDS = 15 * 60
CODE_LIFETIME_SECONDS = 30
ACCESS_TOKEN_LIFETIME_SECONDS = 7200
# The OAuth 1.0a timestamp window; nonces older than this can be forgotten because
# a request carrying them would fail the timestamp check anyway.
NONCE_WINDOW_SECONDS = 5 * 60
CALL_LOG_SIZE = 100_000
FIRST_ADDED_ID = 2_000_000_001


@dataclass
class AppConfig:
    """The one registered app, plus knobs the control API may change at run time."""

    consumer_key: str = "sandbox-consumer-key"
    consumer_secret: str = "sandbox-consumer-secret"
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    app_name: str = "Sandbox Sign-in App"
    callbacks: list[str] = field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*"]
    )
    rate_limit: int = 75
    latency_ms: int = 0
    # X hands a person who already authorised the app the same OAuth 1.0a access
    # token and secret on every sign-in; False mints a new pair each time instead.
    oauth1_reuse_tokens: bool = True


@dataclass
class RequestToken:
    token: str
    secret: str
    callback: str
    persona_id: str | None = None
    verifier: str | None = None
    spent: bool = False


@dataclass
class OAuth1Access:
    token: str
    secret: str
    persona_id: str
    revoked: bool = False


@dataclass
class AuthCode:
    code: str
    redirect_uri: str
    scope: str
    challenge: str
    challenge_method: str
    persona_id: str
    expires_at: float
    spent: bool = False


@dataclass
class Grant:
    """One user's consent to the app; access and refresh tokens hang off it."""

    persona_id: str
    scope: str
    revoked: bool = False


@dataclass
class OAuth2Access:
    token: str
    grant: Grant
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshToken:
    token: str
    grant: Grant
    spent: bool = False


@dataclass
class Fault:
    path: str
    times: int
    status: int | None = None
    delay_ms: int = 0
    drop: bool = False
    # Run the call (a refresh rotates, a token is issued) and only then hold the
    # answer back: what a client that gave up waiting never learns about.
    late_ms: int = 0
    # X's error text in the answer instead of the usual one ("" keeps X's usual text).
    message: str = ""


@dataclass
class RateWindow:
    started: float
    count: int = 0


def new_secret(nbytes: int = 24) -> str:
    return secrets.token_urlsafe(nbytes)


class Sandbox:
    """Thread-safe in-memory state. Every public method takes the lock once."""

    def __init__(self, config: AppConfig) -> None:
        self._defaults = config
        self._lock = threading.Lock()
        self.generation = 0
        self._reset_unlocked()

    def _reset_unlocked(self) -> None:
        # Calls still in flight when the state is reset belong to the old state;
        # see record_call.
        self.generation += 1
        self.config = AppConfig(
            **{**vars(self._defaults), "callbacks": list(self._defaults.callbacks)}
        )
        self.clock_offset = 0.0
        self.personas: dict[str, Persona] = {}
        self.by_name: dict[str, str] = {}
        for persona in builtin_personas():
            self._store_persona(persona)
        self.next_id = FIRST_ADDED_ID
        self.request_tokens: dict[str, RequestToken] = {}
        self.oauth1_tokens: dict[str, OAuth1Access] = {}
        # Each persona's newest OAuth 1.0a access token: what X hands back on a re-sign-in.
        self.oauth1_current: dict[str, str] = {}
        self.codes: dict[str, AuthCode] = {}
        self.oauth2_tokens: dict[str, OAuth2Access] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.issued: list[str] = []
        self.nonces: dict[tuple[str, str], float] = {}
        self.nonces_pruned_at = time.time()
        self.faults: list[Fault] = []
        self.calls: deque[dict[str, Any]] = deque(maxlen=CALL_LOG_SIZE)
        self.rate_windows: dict[tuple[str, str], RateWindow] = {}

    def reset(self) -> None:
        with self._lock:
            self._reset_unlocked()

    def now(self) -> float:
        """Sandbox time: real time plus whatever tests advanced the clock by."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        with self._lock:
            self.clock_offset += seconds
            return self.clock_offset

    def update_config(self, changes: dict[str, Any]) -> AppConfig:
        allowed = {
            "rate_limit": int,
            "latency_ms": int,
            "app_name": str,
            "callbacks": list,
            "oauth1_reuse_tokens": bool,
        }
        for name, value in changes.items():
            if name not in allowed or not isinstance(value, allowed[name]):
                raise ValueError(f"cannot set config {name!r} to {value!r}")
        with self._lock:
            for name, value in changes.items():
                setattr(self.config, name, value)
            return self.config

    # Personas ---------------------------------------------------------------

    def _store_persona(self, persona: Persona) -> None:
        self.personas[persona.id] = persona
        self.by_name[persona.screen_name.lower()] = persona.id

    def list_personas(self) -> list[Persona]:
        with self._lock:
            return list(self.personas.values())

    def persona(self, persona_id: str) -> Persona | None:
        with self._lock:
            return self.personas.get(persona_id)

    def persona_by_name(self, screen_name: str) -> Persona | None:
        with self._lock:
            persona_id = self.by_name.get(screen_name.lower())
            return self.personas.get(persona_id) if persona_id else None

    def add_personas(self, items: list[dict[str, Any]]) -> list[Persona]:
        """Add all or nothing, so a bad item in a bulk load leaves no half-loaded state."""
        cleaned = [validate_fields(item) for item in items]
        with self._lock:
            names = [item.get("screen_name", "").lower() for item in cleaned]
            if not all(names) or len(set(names)) != len(names):
                raise ValueError("every persona needs a unique screen_name")
            taken = [name for name in names if name in self.by_name]
            if taken:
                raise ValueError(f"screen_name already exists: {taken[0]}")
            ids = [item["id"] for item in cleaned if "id" in item]
            if len(set(ids)) != len(ids) or any(i in self.personas for i in ids):
                raise ValueError("persona ids must be new and unique")
            added = []
            for item in cleaned:
                item.setdefault("name", item["screen_name"])
                if "id" not in item:
                    item["id"] = self._next_free_id()
                persona = Persona(**item)
                self._store_persona(persona)
                added.append(persona)
            return added

    def _next_free_id(self) -> str:
        while str(self.next_id) in self.personas:
            self.next_id += 1
        self.next_id += 1
        return str(self.next_id - 1)

    def update_persona(self, screen_name: str, changes: dict[str, Any]) -> Persona | None:
        cleaned = validate_fields(changes)
        if "id" in cleaned:
            raise ValueError("a persona's id cannot change")
        with self._lock:
            persona_id = self.by_name.get(screen_name.lower())
            if persona_id is None:
                return None
            persona = self.personas[persona_id]
            new_name = cleaned.get("screen_name", persona.screen_name).lower()
            if new_name != persona.screen_name.lower() and new_name in self.by_name:
                raise ValueError(f"screen_name already exists: {new_name}")
            del self.by_name[persona.screen_name.lower()]
            for name, value in cleaned.items():
                setattr(persona, name, value)
            self.by_name[persona.screen_name.lower()] = persona.id
            return persona

    # OAuth 1.0a -------------------------------------------------------------

    def _issue(self, *values: str) -> None:
        self.issued.extend(values)

    def use_nonce(self, consumer_key: str, nonce: str, timestamp: float) -> bool:
        """Record a nonce; False if it was seen before (a replay)."""
        with self._lock:
            self._prune_nonces()
            key = (consumer_key, nonce)
            if key in self.nonces:
                return False
            self.nonces[key] = timestamp
            return True

    def _prune_nonces(self) -> None:
        real_now = time.time()
        if real_now - self.nonces_pruned_at < 60:
            return
        cutoff = real_now - 2 * NONCE_WINDOW_SECONDS
        self.nonces = {key: ts for key, ts in self.nonces.items() if ts >= cutoff}
        self.nonces_pruned_at = real_now

    def new_request_token(self, callback: str) -> RequestToken:
        record = RequestToken(token=new_secret(20), secret=new_secret(24), callback=callback)
        with self._lock:
            self.request_tokens[record.token] = record
            self._issue(record.token, record.secret)
        return record

    def request_token(self, token: str) -> RequestToken | None:
        with self._lock:
            return self.request_tokens.get(token)

    def decide_request_token(self, token: str, persona_id: str | None) -> RequestToken | None:
        """Approve (persona_id given) or deny a pending request token; None if not pending."""
        with self._lock:
            record = self.request_tokens.get(token)
            if record is None or record.spent or record.verifier is not None:
                return None
            if persona_id is None:
                record.spent = True
                return record
            record.persona_id = persona_id
            record.verifier = new_secret(24)
            self._issue(record.verifier)
            return record

    def exchange_verifier(self, token: str, verifier: str) -> OAuth1Access | None:
        """Swap an approved request token + verifier for an access token, exactly once."""
        with self._lock:
            record = self.request_tokens.get(token)
            if record is None or record.spent or record.verifier is None:
                return None
            if not secrets.compare_digest(record.verifier, verifier):
                return None
            record.spent = True
            assert record.persona_id is not None
            if self.config.oauth1_reuse_tokens:
                current = self.oauth1_tokens.get(self.oauth1_current.get(record.persona_id, ""))
                if current is not None and not current.revoked:
                    return current
            return self._new_oauth1_access(record.persona_id)

    def _new_oauth1_access(self, persona_id: str) -> OAuth1Access:
        access = OAuth1Access(
            token=f"{persona_id}-{secrets.token_hex(20)}",
            secret=new_secret(30),
            persona_id=persona_id,
        )
        self.oauth1_tokens[access.token] = access
        self.oauth1_current[persona_id] = access.token
        self._issue(access.token, access.secret)
        return access

    def oauth1_access(self, token: str) -> OAuth1Access | None:
        with self._lock:
            return self.oauth1_tokens.get(token)

    # OAuth 2.0 --------------------------------------------------------------

    def new_code(self, **fields: Any) -> AuthCode:
        with self._lock:
            code = AuthCode(
                code=new_secret(32), expires_at=self.now() + CODE_LIFETIME_SECONDS, **fields
            )
            self.codes[code.code] = code
            self._issue(code.code)
            return code

    def spend_code(self, code: str) -> AuthCode | None:
        """Any presentation spends a code, so a failed PKCE guess cannot be retried."""
        with self._lock:
            record = self.codes.get(code)
            if record is None or record.spent:
                return None
            record.spent = True
            return record if record.expires_at > self.now() else None

    def new_grant_tokens(self, grant: Grant) -> tuple[OAuth2Access, RefreshToken | None]:
        with self._lock:
            return self._new_grant_tokens(grant)

    def _new_grant_tokens(self, grant: Grant) -> tuple[OAuth2Access, RefreshToken | None]:
        access = OAuth2Access(
            token=new_secret(48),
            grant=grant,
            expires_at=self.now() + ACCESS_TOKEN_LIFETIME_SECONDS,
        )
        self.oauth2_tokens[access.token] = access
        self._issue(access.token)
        refresh = None
        if "offline.access" in grant.scope.split():
            refresh = RefreshToken(token=new_secret(48), grant=grant)
            self.refresh_tokens[refresh.token] = refresh
            self._issue(refresh.token)
        return access, refresh

    def rotate_refresh(self, token: str) -> tuple[OAuth2Access, RefreshToken | None] | None:
        """Spend a refresh token and mint the next pair; None if spent, unknown or revoked."""
        with self._lock:
            record = self.refresh_tokens.get(token)
            if record is None or record.spent or record.grant.revoked:
                return None
            record.spent = True
            return self._new_grant_tokens(record.grant)

    def oauth2_access(self, token: str) -> OAuth2Access | None:
        """The live access token, or None if unknown, expired or revoked."""
        with self._lock:
            record = self.oauth2_tokens.get(token)
            if record is None or record.revoked or record.grant.revoked:
                return None
            return record if record.expires_at > self.now() else None

    def revoke_oauth2_token(self, token: str) -> None:
        """What the app's own revoke call does: kill just the token it names."""
        with self._lock:
            if token in self.oauth2_tokens:
                self.oauth2_tokens[token].revoked = True
            if token in self.refresh_tokens:
                self.refresh_tokens[token].spent = True

    def revoke(self, token: str) -> bool:
        """The user removed the app in X's settings: the whole grant dies."""
        with self._lock:
            if token in self.oauth1_tokens:
                self.oauth1_tokens[token].revoked = True
                return True
            record = self.oauth2_tokens.get(token) or self.refresh_tokens.get(token)
            if record is None:
                return False
            record.grant.revoked = True
            return True

    def issue_tokens(self, persona_id: str, kind: str, scope: str, count: int) -> list[Any]:
        """Mint tokens without the browser dance (benchmarks need thousands)."""
        with self._lock:
            if kind == "oauth1":
                return [self._new_oauth1_access(persona_id) for _ in range(count)]
            return [self._new_grant_tokens(Grant(persona_id, scope)) for _ in range(count)]

    # Faults, calls, rate limits ---------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, path: str) -> Fault | None:
        """The first armed fault for this path, using up one of its `times`."""
        with self._lock:
            for fault in self.faults:
                if fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault
            return None

    def record_call(
        self,
        method: str,
        path: str,
        status: int | None,
        generation: int,
        duration_ms: float | None = None,
    ) -> None:
        """Log a call, unless the state was reset since it arrived (`generation`).

        A call held up by a delay fault finishes long after the test that armed
        the fault; without this it would turn up in the next test's call log.
        """
        with self._lock:
            if generation != self.generation:
                return
            self.calls.append(
                {
                    "method": method,
                    "path": path,
                    "status": status,
                    "at": self.now(),
                    "duration_ms": duration_ms,
                }
            )

    def call_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.calls)

    def hit_rate_limit(self, user_id: str, endpoint: str) -> tuple[int, int, int, bool]:
        """Count one call; returns (limit, remaining, reset epoch, allowed)."""
        with self._lock:
            now = self.now()
            window = self.rate_windows.get((user_id, endpoint))
            if window is None or now >= window.started + RATE_WINDOW_SECONDS:
                window = self.rate_windows[(user_id, endpoint)] = RateWindow(started=now)
            limit = self.config.rate_limit
            allowed = window.count < limit
            if allowed:
                window.count += 1
            reset = int(window.started + RATE_WINDOW_SECONDS)
            return limit, max(0, limit - window.count), reset, allowed

    def secrets_report(self) -> dict[str, Any]:
        with self._lock:
            return {
                "secrets": list(self.issued),
                "oauth1_request_tokens": [vars(r).copy() for r in self.request_tokens.values()],
                "oauth1_access_tokens": [vars(r).copy() for r in self.oauth1_tokens.values()],
                "oauth2_codes": [vars(r).copy() for r in self.codes.values()],
                "oauth2_access_tokens": [
                    {
                        "token": r.token,
                        "persona_id": r.grant.persona_id,
                        "scope": r.grant.scope,
                        "expires_at": r.expires_at,
                        "revoked": r.revoked or r.grant.revoked,
                    }
                    for r in self.oauth2_tokens.values()
                ],
                "oauth2_refresh_tokens": [
                    {
                        "token": r.token,
                        "persona_id": r.grant.persona_id,
                        "spent": r.spent,
                        "revoked": r.grant.revoked,
                    }
                    for r in self.refresh_tokens.values()
                ],
            }
