from django.db import models

from accounts import crypto


class EncryptedTextField(models.TextField):
    """A text column that holds Fernet ciphertext in the database, plaintext in Python.

    Ciphertext is different on every save, so the column cannot be searched or
    filtered by value, which is exactly what we want for secrets.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        return crypto.decrypt(value)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
