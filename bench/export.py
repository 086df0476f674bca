"""How fast and how flat is the profile export? Prints figures; asserts nothing.

    .venv/bin/python bench/export.py [--rows 100000] [--small 10000] [--repeat 2] [--stock]

Seeds N people (bench/people.py: a token for nine in ten, every 50th living at
"=1+1") into a scratch database -- a temporary SQLite file, or, when DATABASE_URL
points at PostgreSQL, a scratch database created beside it and dropped at the
end -- then writes the CSV of every column, each variant in a fresh process so
its peak memory is its own:

  (a) COPY: PostgreSQL's `COPY (SELECT <the same columns>) TO STDOUT (FORMAT csv)`
      of export_rows()'s query, nothing rendered, cleaned or neutralised: the floor
  (b) ours: admin_ext.export.write_export, what the admin, the command and jobs run
      (on PostgreSQL: COPY with SQL rendering and the cleaning/neutralising pass)
  (c) Python: admin_ext.export.iter_csv over stream_rows, every cell rendered in
      Python (the path on SQLite, and the reference (b) must equal byte for byte)
  (d) stock: ProfileResource().export() + import-export's CSV, only with --stock
      (it holds the whole table in memory)

(a) and (b) run --repeat times, alternating, and the best of each is compared;
then (b) again over the first --small rows, for memory growth from small to N.
Targets (issue 19): (b) <= 1.5x (a) in time; (b)'s peak grows < 50 MB from small
to N. Every output's SHA-256 is compared: (b) must be (c)'s file exactly.
"""

import argparse
import hashlib
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
from bench.people import seed_people  # noqa: E402


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


# --- the variants (each run in a child process) -----------------------------------------


def queryset(limit: int | None):
    from accounts.models import Profile

    profiles = Profile.objects.all()
    if limit:
        last = Profile.objects.order_by("pk").values_list("pk", flat=True)[limit - 1]
        profiles = profiles.filter(pk__lte=last)
    return profiles


def run_copy(out, limit):
    from django.db import connection
    from psycopg import ClientCursor

    from admin_ext.export import export_columns, export_rows

    rows = export_rows(queryset(limit), export_columns())
    sql, params = rows.query.get_compiler(connection=connection).as_sql()
    with connection.cursor() as cursor:
        bound = ClientCursor(cursor.connection).mogrify(sql, params)
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY ({bound}) TO STDOUT (FORMAT csv)") as copy,
    ):
        for data in copy:
            out.buffer.write(data)


def run_ours(out, limit):
    from admin_ext.export import export_columns, write_export

    write_export(queryset(limit), export_columns(), "csv", out)


def run_python(out, limit):
    from admin_ext.export import export_columns, iter_csv, stream_rows

    columns = export_columns()
    for piece in iter_csv(stream_rows(queryset(limit), columns), columns):
        out.write(piece)


def run_stock(out, limit):
    from import_export.formats.base_formats import CSV

    from admin_ext.export import ProfileResource

    dataset = ProfileResource().export(queryset=queryset(limit))
    out.write(CSV().export_data(dataset))


VARIANTS = {"copy": run_copy, "ours": run_ours, "python": run_python, "stock": run_stock}
LABELS = {
    "copy": "(a) COPY (SELECT same columns) TO STDOUT",
    "ours": "(b) ours: write_export, as the site exports",
    "python": "(c) Python writer: iter_csv",
    "stock": "(d) stock ProfileResource().export() + CSV",
}


def memory_kb(field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in kB.

    Not ru_maxrss: Linux carries it over from the parent through fork and exec, so
    every child would report the seeding parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def sha256(out) -> str:
    out.seek(0)
    digest = hashlib.sha256()
    while block := out.buffer.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


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
        peak = memory_kb("VmHWM")
        size = out.buffer.tell() if variant == "copy" else out.tell()
        digest = sha256(out)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_kb": peak,
                "growth_kb": peak - before,
                "bytes": size,
                "sha256": digest,
            }
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


def show(variant: str, rows: int, result: dict) -> None:
    print(
        f"{LABELS[variant] + f' [{rows:,}]':52} {result['seconds']:8.2f}s "
        f"{mb(result['peak_kb'])} {mb(result['growth_kb'])} {result['bytes'] / 1e6:7.1f}MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--stock", action="store_true", help="also run (d)")
    parser.add_argument("--child", choices=sorted(VARIANTS))
    parser.add_argument("--database-url")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database_url, args.limit)
        return

    with ScratchDatabase("export_bench") as scratch:
        print(f"Seeding {args.rows:,} people into a scratch {scratch.engine} database...")
        started = time.perf_counter()
        setup_django(scratch.url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        seed_people(args.rows, progress=lambda text: print(text, flush=True))
        print(f"  seeded in {time.perf_counter() - started:.1f} s\n", flush=True)

        print(f"{'variant':52} {'time':>9} {'peak RSS':>11} {'growth':>11} {'output':>9}")
        paired = ["copy", "ours"] if scratch.postgres else ["ours"]
        runs: dict[str, list[dict]] = {variant: [] for variant in paired}
        for _ in range(args.repeat):  # alternate, so the machine's drift hits both alike
            for variant in paired:
                runs[variant].append(measure(variant, scratch.url))
                show(variant, args.rows, runs[variant][-1])
        results = {
            variant: min(done, key=lambda r: r["seconds"]) for variant, done in runs.items()
        }
        for variant in ["python", "stock"] if args.stock else ["python"]:
            results[variant] = measure(variant, scratch.url)
            show(variant, args.rows, results[variant])
        small = measure("ours", scratch.url, args.small)
        show("ours", args.small, small)

        ours, python = results["ours"], results["python"]
        print()
        if "copy" in results:
            ratio = ours["seconds"] / results["copy"]["seconds"]
            print(f"(b)/(a) time, best of {args.repeat}: {ratio:.2f}x   (target <= 1.5x)")
        print(f"(c)/(b) time: {python['seconds'] / ours['seconds']:.2f}x")
        growth = (ours["peak_kb"] - small["peak_kb"]) / 1024
        print(
            f"(b) peak RSS growth from {args.small:,} to {args.rows:,} rows: "
            f"{growth:.1f} MB   (target < 50 MB)"
        )
        same = ours["sha256"] == python["sha256"]
        print(f"(b) byte-identical to (c): {'yes' if same else 'NO'} (sha256 {ours['sha256']})")


if __name__ == "__main__":
    main()
