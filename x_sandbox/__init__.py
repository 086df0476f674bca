"""X sandbox: a small standalone server that behaves like X on the wire.

No test machine and no newcomer's laptop can reach X, so the site talks to this
instead (`X_API_BASE_URL` and `X_WEB_BASE_URL` both point at it). It is
deliberately independent of the site's code -- no Django, no `accounts`, no
`admin_ext` -- so it cannot share the site's mistakes. Strictness is the point:
signatures, PKCE, single-use verifiers/codes/refresh tokens, expiry, revocation
and rate limits are enforced the way X documents them.

Start: ``python -m x_sandbox [--host 127.0.0.1] [--port 8001] [--latency-ms 0]
[--rate-limit 75] [--consumer-key K] [--consumer-secret S] [--client-id ID]
[--client-secret S] [--app-name NAME] [--callback URL ...]
[--oauth1-new-token-each-sign-in]``. ``--port 0`` picks a free port; the first
stdout line is ``x_sandbox listening on http://HOST:PORT``.

A second grant: like X, an OAuth 1.0a sign-in by a person who already authorised
the app returns the **same** access token and secret as before (the persona's
newest one that is not revoked); only a revoked token makes the next sign-in mint
a new pair. ``--oauth1-new-token-each-sign-in`` (or config ``oauth1_reuse_tokens:
false``) mints a new pair on every sign-in instead, the older ones staying valid.
OAuth 2.0 always issues a new grant per sign-in, as X does.

The registered app: OAuth 1.0a ``sandbox-consumer-key`` / ``sandbox-consumer-secret``,
OAuth 2.0 confidential client ``sandbox-client-id`` / ``sandbox-client-secret``.
Approved callbacks default to ``http://127.0.0.1:*`` and ``http://localhost:*``
(a trailing ``:*`` allows any port and path on that host; other entries must
match exactly).

Built-in personas (reset restores them)::

    1000000001  ada_lovelace   full profile, verified
    1000000002  grace_hopper   location "" and url null
    1000000003  private_pat    protected
    1000000004  formula_fred   description starts with "=HYPERLINK("
    1000000005  hostile_harry  NUL, terminal escapes, markup, U+202E, a 10 kB bio,
                               a javascript: url, counts of 2**40 and below zero

X endpoints: ``POST /oauth/request_token``, ``GET|POST /oauth/authenticate`` and
``/oauth/authorize`` (consent page), ``POST /oauth/access_token``,
``GET /1.1/account/verify_credentials.json``, ``POST /1.1/oauth/invalidate_token[.json]``,
``GET|POST /i/oauth2/authorize`` (consent page), ``POST /2/oauth2/token``,
``POST /2/oauth2/revoke``, ``GET /2/users/me``, and avatars at
``GET /profile_images/<id>/avatar_normal.jpg``.

Control API (JSON in and out; not part of X; never delayed, faulted or logged):

``GET /_sandbox/personas``
    ``{"personas": [{id, screen_name, name, location, url, description, protected,
    verified, followers_count, friends_count, listed_count, statuses_count,
    created_at (ISO 8601), email, profile_image_url}, ...]}``
``POST /_sandbox/personas``
    One persona object or a list (all-or-nothing). ``screen_name`` required;
    ``id`` is assigned from 2000000001 up when missing; unknown fields or wrong
    types -> 400. -> 201 ``{"personas": [...]}``.
``PATCH /_sandbox/personas/<screen_name>``
    Update any fields but ``id``; the next ``verify_credentials``/``users/me``
    shows the change. -> 200 persona, 404 if unknown.
``POST /_sandbox/faults``
    ``{"path": "/2/oauth2/token", "status": 503, "times": 3}``, or ``"delay_ms": 2000``
    (wait, then handle the call), or ``"drop": true`` (close the connection without
    answering), or ``"late_ms": 2000`` (handle the call and commit what it does -- a
    refresh token spent, a new pair issued -- then hold the answer back: X answering
    after the client's timeout; not combinable with status or drop). The path is
    matched exactly; ``times`` defaults to 1; ``"message"`` replaces X's error text
    in a status fault's body (hostile error bodies). -> 201.
``DELETE /_sandbox/faults``
    Disarm every fault.
``POST /_sandbox/clock``
    ``{"advance_seconds": N}`` -> ``{"offset_seconds", "now"}``. Code/token expiry and
    rate-limit windows use this clock; the OAuth 1.0a timestamp check uses the real one.
``POST /_sandbox/revoke``
    ``{"token": "<access token>"}``: the user removed the app in X's settings (an
    OAuth 2.0 grant dies with its refresh tokens). -> 200 ``{"revoked": true}``, 404 if unknown.
``POST /_sandbox/tokens``
    ``{"screen_name": "ada_lovelace", "kind": "oauth1"|"oauth2", "scope": "tweet.read
    users.read offline.access", "count": 1}`` mints tokens without the browser dance.
    -> 201 ``{"tokens": [...]}``: OAuth 1.0a items are ``{oauth_token, oauth_token_secret,
    user_id, screen_name}``, OAuth 2.0 items are X's token response body.
``GET /_sandbox/tokens``
    ``{"secrets": [every secret ever issued: request tokens and their secrets,
    verifiers, access tokens and secrets, codes, refresh tokens], "oauth1_request_tokens",
    "oauth1_access_tokens", "oauth2_codes", "oauth2_access_tokens",
    "oauth2_refresh_tokens"}`` -- for tests that hunt for leaked secrets.
``GET /_sandbox/calls``
    ``{"calls": [{"method", "path", "status", "at", "duration_ms"}, ...]}`` for every
    non-control call, oldest first; no query strings, no secrets; ``status`` is null for
    a dropped connection; ``at`` is sandbox-clock epoch seconds; ``duration_ms`` is how
    long the sandbox took to answer (latency and delays included; null for a dropped
    connection), so a benchmark can subtract the time spent at X (bench/signin.py).
``POST /_sandbox/reset``
    Built-in personas only, no tokens, faults or calls, clock offset 0, options as started.
``GET|POST /_sandbox/config``
    Read or change ``{"rate_limit": int, "latency_ms": int, "app_name": str,
    "callbacks": [str], "oauth1_reuse_tokens": bool}``.
"""
