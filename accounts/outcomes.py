"""What happened to one token: the small value every token operation returns.

Its own module so that accounts.tokens and accounts.revocation, which call each
other, can both use it; `accounts.tokens.Outcome` is the name callers import.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What happened to one token. `message` is safe to show and log: no secrets.

    `pending_revocation_id` is set when X did not confirm a revocation and the
    grant was kept on the pending-revocations list to be retried.
    """

    ok: bool
    status: str
    message: str = ""
    http_status: int | None = None
    pending_revocation_id: int | None = None
