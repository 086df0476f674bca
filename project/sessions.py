"""Database sessions without the two queries Django's backend spends for nothing.

Every sign-in makes two sessions (one when it starts, one when login() cycles the
key), and Django's database backend costs an extra query for each:
- before inserting a new session it SELECTs whether the random key is taken, yet
  the INSERT it then runs with must_create already fails on a taken key, and
  create() already retries on that failure;
- deleting the old session loads the row into a model first, to delete it one
  row at a time, where a single DELETE does the same.
Everything else, the table included, is Django's.
"""

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils.crypto import get_random_string


class SessionStore(DatabaseSessionStore):
    def _get_new_session_key(self) -> str:
        # 32 characters from 36 (165 bits): a clash is left to the INSERT to catch.
        return get_random_string(32, VALID_KEY_CHARS)

    def delete(self, session_key: str | None = None) -> None:
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key=session_key).delete()
