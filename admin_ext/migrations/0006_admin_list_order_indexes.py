"""Indexes for the default order of the Profiles and X tokens lists in the admin.

Without them the first page of either list sorts the whole table. The lists are
the admin's, so the indexes live here rather than on the accounts models.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("admin_ext", "0005_bulkjobitem_claim_index"),
    ]

    operations = [
        # ProfileAdmin.ordering = ("-last_synced_at", "-pk"), read backwards.
        migrations.RunSQL(
            "CREATE INDEX profile_admin_order ON accounts_profile (last_synced_at, id)",
            "DROP INDEX profile_admin_order",
        ),
        # XTokenAdmin.ordering = ("-updated_at", "-pk"), read backwards.
        migrations.RunSQL(
            "CREATE INDEX xtoken_admin_order ON accounts_xtoken (updated_at, id)",
            "DROP INDEX xtoken_admin_order",
        ),
    ]
