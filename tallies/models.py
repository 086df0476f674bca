"""Counts as rows of changes: each write adds (key, +n/-n) rows, the figure is their sum.

Appending rows instead of updating one row per figure means two transactions
changing the same figure never wait for each other nor deadlock (a hot counter
row would be locked until each writer commits). `tallies.counting.compact` folds
the rows into one per key every so often, so a sum reads a few hundred rows.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TallyDelta(models.Model):
    key = models.CharField(max_length=64, db_index=True)
    delta = models.BigIntegerField()

    class Meta:
        verbose_name = _("tally change")

    def __str__(self) -> str:
        return f"{self.key} {self.delta:+d}"
