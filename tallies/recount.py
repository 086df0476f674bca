"""Every figure counted afresh from the rows: fills the table once, and repairs it
after writes that bypassed Django (raw SQL, a restore of one table)."""

from collections import Counter

from django.apps.registry import Apps
from django.db import transaction
from django.db.models import Count

from tallies import keys
from tallies.counting import replace_all


def full_recount(apps: Apps) -> Counter:
    """The figures as the rows say, one grouped query per model (`apps`: the app
    registry, or a migration's historical one)."""
    figures: Counter = Counter()
    tokens = apps.get_model("accounts", "XToken").objects.values_list("kind", "status")
    for kind, status, count in tokens.annotate(count=Count("pk")).order_by():
        figures[keys.token(kind, status)] += count
    profiles = apps.get_model("accounts", "Profile").objects
    figures[keys.PROFILES] += profiles.count()
    x_accounts = profiles.filter(x_user_id__isnull=False)
    for method, created_at in x_accounts.values_list("sign_in_method", "created_at").iterator():
        figures[keys.x_account(method)] += 1
        figures[keys.sign_ups_on(keys.day_of(created_at))] += 1
    items = apps.get_model("admin_ext", "BulkJobItem").objects.values_list("job_id", "status")
    for job_id, status, count in items.annotate(count=Count("pk")).order_by():
        figures[keys.job_items(job_id, status)] += count
    pending = apps.get_model("accounts", "PendingRevocation").objects
    figures[keys.PENDING_REVOCATIONS] += pending.filter(resolved_at__isnull=True).count()
    sign_ins = apps.get_model("admin_ext", "SignInEvent").objects.values_list("created_at")
    for (created_at,) in sign_ins.iterator():
        figures[keys.sign_ins_on(keys.day_of(created_at))] += 1
    return +figures


def rebuild(apps: Apps) -> Counter:
    """Replace the figures by a full recount, with the counted tables locked meanwhile
    on PostgreSQL (SQLite's IMMEDIATE transactions already admit one writer)."""
    with transaction.atomic():
        connection = transaction.get_connection()
        if connection.vendor == "postgresql":
            tables = [
                apps.get_model(*label)._meta.db_table
                for label in (
                    ("accounts", "XToken"),
                    ("accounts", "Profile"),
                    ("accounts", "PendingRevocation"),
                    ("admin_ext", "SignInEvent"),
                    ("admin_ext", "BulkJobItem"),
                )
            ]
            with connection.cursor() as cursor:
                cursor.execute(
                    "LOCK TABLE {} IN SHARE MODE".format(
                        ", ".join(connection.ops.quote_name(name) for name in tables)
                    )
                )
        figures = full_recount(apps)
        replace_all(figures)
    return figures
