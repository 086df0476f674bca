"""Counted models: every way Django writes one of their rows also updates the figures.

A model opts in by inheriting `TalliedModel` (before models.Model), naming in
`tally_fields` the columns its figures depend on, mapping their values to figure
keys in `tally_keys`, and using a `TalliedQuerySet` manager. Then, inside the
transaction of the write:

- `save()` (create, update_or_create, get_or_create, a related manager's create),
- `QuerySet.update()` and so `bulk_update()`,
- `QuerySet.bulk_create()`, plain or as an upsert (`update_conflicts`),
- every deletion (Model.delete, QuerySet.delete, a cascade: pre_delete, connected
  in TalliesConfig.ready)

read the counted columns of the rows they change under a row lock first, so a
figure moves from what the row really held to what it holds now, even when the
instance in memory is stale or another transaction changed the row meanwhile.
Writes that bypass Django (raw SQL) are not seen: `manage.py recount_tallies`
rebuilds the figures from the rows.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from django.db import IntegrityError, NotSupportedError, models, transaction

from tallies.counting import IDS_PER_STATEMENT, record


class TalliedModel:
    tally_fields: ClassVar[tuple[str, ...]]

    @classmethod
    def tally_keys(cls, values: Sequence[Any]) -> list[str]:
        """The figures one row adds 1 to, given its `tally_fields` values in order."""
        raise NotImplementedError

    def tally_values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.tally_fields)

    def save(self, *args: Any, **kwargs: Any) -> None:
        update_fields = kwargs.get("update_fields")
        fields = self.tally_fields
        if update_fields is not None and not set(update_fields) & set(fields):
            super().save(*args, **kwargs)  # type: ignore[misc]
            return
        with transaction.atomic(savepoint=False):
            before = None if self.pk is None else locked_values(type(self), [self.pk])
            old = before.get(self.pk) if before else None
            super().save(*args, **kwargs)  # type: ignore[misc]
            new = self.tally_values()
            if old is not None and update_fields is not None:
                # Columns the save did not write keep what the row held.
                new = tuple(
                    value if name in update_fields else kept
                    for name, value, kept in zip(fields, new, old, strict=True)
                )
            record(changes(type(self), [old] if old is not None else [], [new]))


def changes(
    model: type[TalliedModel], before: Iterable[Sequence], after: Iterable[Sequence]
) -> Counter:
    """How the figures move when rows holding `before` come to hold `after`."""
    moved: Counter = Counter()
    for values in before:
        moved.subtract(model.tally_keys(values))
    for values in after:
        moved.update(model.tally_keys(values))
    return moved


def locked_values(model: type[models.Model], pks: list) -> dict[Any, tuple]:
    """{pk: counted values} of the rows that exist, locked until the transaction ends."""
    found = {}
    rows = model._base_manager.select_for_update(of=("self",))
    for start in range(0, len(pks), IDS_PER_STATEMENT):
        for pk, *values in rows.filter(pk__in=pks[start : start + IDS_PER_STATEMENT]).values_list(
            "pk", *model.tally_fields
        ):
            found[pk] = tuple(values)
    return found


def count_deletion(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    """pre_delete: the row leaves the figures it was in, as the database holds it now."""
    old = locked_values(sender, [instance.pk]).get(instance.pk)
    if old is not None:
        record(changes(sender, [old], []))


class TalliedQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        fields = self.model.tally_fields
        if not set(kwargs) & set(fields):
            return super().update(**kwargs)
        with transaction.atomic(savepoint=False):
            before = dict(
                (pk, tuple(values))
                for pk, *values in self.select_for_update(of=("self",)).values_list("pk", *fields)
            )
            pks = list(before)
            updated = 0
            for start in range(0, len(pks), IDS_PER_STATEMENT):
                chunk = pks[start : start + IDS_PER_STATEMENT]
                updated += self.model._base_manager.filter(pk__in=chunk).update(**kwargs)
            record(changes(self.model, before.values(), self._after(before, kwargs)))
        return updated

    def _after(self, before: dict[Any, tuple], kwargs: dict[str, Any]) -> Iterable[tuple]:
        """What the locked rows hold now: plain values named as in `tally_fields` are
        known without asking (as the field reads them back); an expression (F(),
        Case, ...) or another spelling of a counted column is read again."""
        meta = self.model._meta
        fields = self.model.tally_fields
        counted = {meta.get_field(name) for name in fields}
        for key, value in kwargs.items():
            if meta.get_field(key) in counted and (
                key not in fields or hasattr(value, "resolve_expression")
            ):
                return locked_values(self.model, list(before)).values()
        new = {
            name: meta.get_field(name).to_python(kwargs[name]) for name in fields if name in kwargs
        }
        return (
            tuple(new.get(name, kept) for name, kept in zip(fields, values, strict=True))
            for values in before.values()
        )

    def bulk_create(
        self,
        objs: Iterable[models.Model],
        batch_size: int | None = None,
        ignore_conflicts: bool = False,
        update_conflicts: bool = False,
        update_fields: Sequence[str] | None = None,
        unique_fields: Sequence[str] | None = None,
    ) -> list[models.Model]:
        if ignore_conflicts:
            # Which rows were inserted is not reported, so they could not be counted.
            raise NotSupportedError("Counted models cannot bulk_create with ignore_conflicts.")
        objs = list(objs)
        with transaction.atomic(savepoint=False):
            if not update_conflicts:
                created = super().bulk_create(objs, batch_size=batch_size)
                record(changes(self.model, [], (obj.tally_values() for obj in created)))
                return created
            for obj in objs:
                self._upsert(obj, list(update_fields or []), list(unique_fields or []))
        return objs

    def _upsert(self, obj: TalliedModel, update_fields: list[str], unique_fields: list[str]):
        """INSERT ... ON CONFLICT DO UPDATE for one row, knowing what the row held before.

        The row is locked before it is replaced; one that does not exist yet is
        inserted plainly, and if another transaction inserted it meanwhile (the
        unique constraint says so once that one commits) it is locked and replaced.
        """
        meta = self.model._meta
        same_row = {name: getattr(obj, meta.get_field(name).attname) for name in unique_fields}
        fields = self.model.tally_fields
        for attempt in range(2):
            old = (
                self.model._base_manager.select_for_update(of=("self",))
                .filter(**same_row)
                .values_list(*fields)
                .first()
            )
            if old is None:
                try:
                    with transaction.atomic():
                        super().bulk_create([obj])
                except IntegrityError:
                    if attempt:
                        raise
                    continue
                record(changes(self.model, [], [obj.tally_values()]))
                return
            super().bulk_create(
                [obj],
                update_conflicts=True,
                update_fields=update_fields,
                unique_fields=unique_fields,
            )
            new = tuple(
                value if name in update_fields else kept
                for name, value, kept in zip(fields, obj.tally_values(), old, strict=True)
            )
            record(changes(self.model, [old], [new]))
            return
