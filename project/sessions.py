"""Database sessions in Django's table, read and written with one plain SQL statement each.

A sign-in touches its session about ten times (created when it starts, saved and
reloaded around each OAuth step, cycled at login()), and through the ORM each of
those costs far more in building the query than in running it: a quarter of a
sign-in's time went to the session store. The statements are always the same
four, on one table keyed by one column, so they are written out here once.

The behaviour is Django's database backend's, with two queries fewer:
- a new key is not SELECTed first to see whether it is taken: the INSERT fails on
  a taken key anyway (raising CreateError, on which create() picks another);
- deleting runs one DELETE instead of loading the row into a model first.
Expiry, UpdateError on a session deleted meanwhile (SessionMiddleware then answers
"session interrupted"), tampered data read as an empty session: all as Django does.
The table, the model and `clearsessions` are Django's.
"""

from contextlib import nullcontext
from datetime import datetime
from functools import cache
from typing import Any

from django.contrib.sessions.backends.base import VALID_KEY_CHARS, CreateError, UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.functional import cached_property

# The only value put into these is the session model's table name, quoted by the
# database backend; everything else is a query parameter.
STATEMENTS = {
    "load": "SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s",
    "insert": "INSERT INTO {table} (session_key, session_data, expire_date) VALUES (%s, %s, %s)",
    "update": "UPDATE {table} SET session_data = %s, expire_date = %s WHERE session_key = %s",
    "delete": "DELETE FROM {table} WHERE session_key = %s",
}


@cache
def _statements(using: str, db_table: str) -> dict[str, str]:
    table = connections[using].ops.quote_name(db_table)
    return {name: statement.format(table=table) for name, statement in STATEMENTS.items()}


class SessionStore(DatabaseSessionStore):
    @cached_property
    def _using(self) -> str:
        return router.db_for_write(self.model)

    @property
    def _sql(self) -> dict[str, str]:
        return _statements(self._using, self.model._meta.db_table)

    def _datetime(self, value: datetime) -> Any:
        return connections[self._using].ops.adapt_datetimefield_value(value)

    def _execute(self, sql: str, params: tuple) -> int:
        """Run one write statement; return how many rows it changed.

        A single statement is atomic by itself. Only inside a caller's transaction is
        a savepoint needed, so that a failed INSERT does not break that transaction.
        """
        connection = connections[self._using]
        in_transaction = connection.in_atomic_block
        savepoint = transaction.atomic(using=self._using) if in_transaction else nullcontext()
        with savepoint, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount

    def _get_new_session_key(self) -> str:
        # 32 characters from 36 (165 bits): a clash is left to the INSERT to catch.
        return get_random_string(32, VALID_KEY_CHARS)

    def load(self) -> dict[str, Any]:
        with connections[self._using].cursor() as cursor:
            cursor.execute(self._sql["load"], (self.session_key, self._datetime(timezone.now())))
            row = cursor.fetchone()
        if row is None:
            self._session_key = None
            return {}
        return self.decode(row[0])

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self.encode(self._get_session(no_load=must_create))
        expire_date = self._datetime(self.get_expiry_date())
        if must_create:
            try:
                self._execute(self._sql["insert"], (self.session_key, data, expire_date))
            except IntegrityError:
                raise CreateError from None
            return
        updated = self._execute(self._sql["update"], (data, expire_date, self.session_key))
        if not updated:
            # Deleted meanwhile (signed out in another tab, or expired and cleared).
            raise UpdateError

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._execute(self._sql["delete"], (session_key,))
