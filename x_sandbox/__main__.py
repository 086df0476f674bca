"""Command line: `python -m x_sandbox [--host 127.0.0.1] [--port 8001] [--latency-ms 0]`.

Prints one line, "x_sandbox listening on http://HOST:PORT", once it accepts
connections; with `--port 0` that line is how callers learn the free port.
"""

from __future__ import annotations

import argparse
import sys

from x_sandbox.app import SandboxApp
from x_sandbox.server import make_server
from x_sandbox.state import AppConfig, Sandbox


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = AppConfig()
    parser = argparse.ArgumentParser(
        prog="python -m x_sandbox", description="A local stand-in for X."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    parser.add_argument(
        "--latency-ms", type=int, default=0, help="fixed delay added to every API call"
    )
    parser.add_argument(
        "--rate-limit", type=int, default=defaults.rate_limit, help="calls per 15 minutes"
    )
    parser.add_argument("--consumer-key", default=defaults.consumer_key)
    parser.add_argument("--consumer-secret", default=defaults.consumer_secret)
    parser.add_argument("--client-id", default=defaults.client_id)
    parser.add_argument("--client-secret", default=defaults.client_secret)
    parser.add_argument("--app-name", default=defaults.app_name)
    parser.add_argument(
        "--oauth1-new-token-each-sign-in",
        action="store_true",
        help="mint a new OAuth 1.0a access token on every sign-in (X hands back the same one)",
    )
    parser.add_argument(
        "--callback",
        action="append",
        dest="callbacks",
        help="approved callback URL; repeat for more; 'http://host:*' allows any port and path",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = AppConfig(
        consumer_key=args.consumer_key,
        consumer_secret=args.consumer_secret,
        client_id=args.client_id,
        client_secret=args.client_secret,
        app_name=args.app_name,
        rate_limit=args.rate_limit,
        latency_ms=args.latency_ms,
        oauth1_reuse_tokens=not args.oauth1_new_token_each_sign_in,
    )
    if args.callbacks:
        config.callbacks = args.callbacks
    server = make_server(args.host, args.port, SandboxApp(Sandbox(config)))
    host, port = server.server_address[:2]
    print(f"x_sandbox listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
