"""How fast and how flat is the profile export? Prints figures; asserts nothing.

    .venv/bin/python bench/export.py [--rows 100000] [--small 10000]

Seeds N profiles (a third with an OAuth 1.0a token, a third with OAuth 2.0, the
rest none) into a scratch database -- a temporary SQLite file, or, when
DATABASE_URL points at PostgreSQL, a scratch database created beside it and
dropped at the end -- then times, each in a fresh process so peak memory is its own:

  (a) raw: csv.writer over values_list(...).iterator() of the same columns
  (b) stock: ProfileResource().export() (a tablib Dataset) + import-export's CSV
  (c) ours: admin_ext.export.iter_csv over stream_rows, as the admin streams it

and (c) again over the first --small rows, for memory growth from small to N.
Targets: (c) <= 1.5x (a) in time; (c)'s peak grows by < 50 MB from small to N.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import ScratchDatabase  # noqa: E402


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


# --- seeding ------------------------------------------------------------------------


def seed(rows: int) -> None:
    from datetime import UTC, datetime, timedelta

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction

    from accounts.models import Profile, TokenKind, XToken

    call_command("migrate", verbosity=0)
    User = get_user_model()
    start = datetime(2010, 1, 1, tzinfo=UTC)
    batch = 5000
    for offset in range(0, rows, batch):
        count = min(batch, rows - offset)
        with transaction.atomic():
            users = User.objects.bulk_create(
                User(
                    username=f"user{n}",
                    email=f"user{n}@example.org",
                    last_login=start + timedelta(days=n % 4000),
                )
                for n in range(offset, offset + count)
            )
            profiles = Profile.objects.bulk_create(
                Profile(
                    user=user,
                    x_user_id=str(3_000_000_000 + n),
                    screen_name=f"person_{n}",
                    name=f"Person {n}",
                    location="=1+1" if n % 50 == 0 else "Somewhere",
                    url=f"https://example.org/{n}",
                    description=f'Bio of person {n}, with a comma and "quotes"',
                    followers_count=n * 7 % 100_000,
                    following_count=n * 3 % 5000,
                    protected=n % 13 == 0,
                    verified=n % 17 == 0,
                    x_created_at=start + timedelta(hours=n),
                    last_synced_at=start + timedelta(days=4000),
                    sign_in_method=(TokenKind.OAUTH1, TokenKind.OAUTH2, "")[n % 3],
                )
                for n, user in zip(range(offset, offset + count), users, strict=True)
            )
            tokens = []
            for n, profile in zip(range(offset, offset + count), profiles, strict=True):
                if n % 3 == 2:
                    continue
                token = XToken(
                    profile=profile,
                    kind=(TokenKind.OAUTH1, TokenKind.OAUTH2)[n % 3],
                    expires_at=start + timedelta(days=5000) if n % 3 == 1 else None,
                )
                token.set_secrets(f"access-{n}-secret", f"secret-{n}", f"refresh-{n}")
                tokens.append(token)
            XToken.objects.bulk_create(tokens)


# --- the three variants (run in a child process) -------------------------------------


def queryset(limit: int | None):
    from accounts.models import Profile

    profiles = Profile.objects.all()
    if limit:
        last = Profile.objects.order_by("pk").values_list("pk", flat=True)[limit - 1]
        profiles = profiles.filter(pk__lte=last)
    return profiles


def run_raw(out, limit):
    import csv

    from admin_ext.export import export_columns, export_rows

    columns = export_columns()
    writer = csv.writer(out)
    writer.writerow([column.header for column in columns])
    rows = export_rows(queryset(limit), columns).iterator(chunk_size=2000)
    writer.writerows(rows)


def run_stock(out, limit):
    from import_export.formats.base_formats import CSV

    from admin_ext.export import ProfileResource

    dataset = ProfileResource().export(queryset=queryset(limit))
    out.write(CSV().export_data(dataset))


def run_ours(out, limit):
    from admin_ext.export import export_columns, iter_csv, stream_rows

    columns = export_columns()
    for piece in iter_csv(stream_rows(queryset(limit), columns), columns):
        out.write(piece)


VARIANTS = {"raw": run_raw, "stock": run_stock, "ours": run_ours}


def memory_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in kB.

    Not ru_maxrss: Linux carries it over from the parent through fork and exec, so
    every child would report the seeding parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def child(variant: str, database_url: str, limit: int | None) -> None:
    setup_django(database_url)
    from django.db import connection

    connection.ensure_connection()
    before = memory_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # restart VmHWM from the current RSS
    with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as out:
        started = time.perf_counter()
        VARIANTS[variant](out, limit)
        out.flush()
        seconds = time.perf_counter() - started
        size = out.tell()
    peak = memory_kb("VmHWM")
    print(
        json.dumps(
            {"seconds": seconds, "peak_kb": peak, "growth_kb": peak - before, "bytes": size}
        )
    )


def measure(variant: str, database_url: str, limit: int | None = None) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--database-url", database_url]
    if limit:
        command += ["--limit", str(limit)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(output.stdout.strip().splitlines()[-1])


def mb(kb: float) -> str:
    return f"{kb / 1024:7.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--child", choices=sorted(VARIANTS))
    parser.add_argument("--database-url")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database_url, args.limit)
        return

    with ScratchDatabase("export_bench") as scratch:
        print(
            f"Seeding {args.rows:,} profiles into a scratch {scratch.engine} database...",
            flush=True,
        )
        started = time.perf_counter()
        setup_django(scratch.url)
        seed(args.rows)
        print(f"  seeded in {time.perf_counter() - started:.1f} s\n", flush=True)

        results = {}
        labels = {
            "raw": "(a) raw csv.writer over values_list().iterator()",
            "stock": "(b) stock ProfileResource().export() + CSV",
            "ours": "(c) our streaming export (iter_csv)",
        }
        print(f"{'variant':56} {'time':>9} {'peak RSS':>11} {'growth':>11} {'output':>9}")
        for variant in ("raw", "stock", "ours"):
            result = results[variant] = measure(variant, scratch.url)
            print(
                f"{labels[variant] + f' [{args.rows:,}]':56} {result['seconds']:8.2f}s "
                f"{mb(result['peak_kb'])} {mb(result['growth_kb'])} "
                f"{result['bytes'] / 1e6:7.1f}MB",
                flush=True,
            )
        small = measure("ours", scratch.url, args.small)
        print(
            f"{labels['ours'] + f' [{args.small:,}]':56} {small['seconds']:8.2f}s "
            f"{mb(small['peak_kb'])} {mb(small['growth_kb'])} {small['bytes'] / 1e6:7.1f}MB"
        )

        ours, raw, stock = results["ours"], results["raw"], results["stock"]
        time_ratio = ours["seconds"] / raw["seconds"]
        growth = (ours["peak_kb"] - small["peak_kb"]) / 1024
        print()
        print(f"(c)/(a) time: {time_ratio:.2f}x   (target <= 1.5x)")
        print(f"(b)/(c) time: {stock['seconds'] / ours['seconds']:.2f}x")
        print(f"(b)/(c) peak RSS: {stock['peak_kb'] / ours['peak_kb']:.2f}x")
        print(
            f"(c) peak RSS growth from {args.small:,} to {args.rows:,} rows: "
            f"{growth:.1f} MB   (target < 50 MB)"
        )


if __name__ == "__main__":
    main()
