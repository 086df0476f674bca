from django.db import models

from accounts import crypto


class EncryptedTextField(models.TextField):
    """A text column that holds Fernet ciphertext in the database, plaintext in Python.

    Ciphertext is different on every save, so the column cannot be searched or
    filtered by value, which is exactly what we want for secrets.

    A value no configured key decrypts loads as crypto.UnreadableSecret (see there)
    and is saved back as the very ciphertext it was loaded from.
    """

    def from_db_value(self, value, expression, connection):
        if not value:
            return value
        try:
            return crypto.decrypt(value)
        except crypto.TokenDecryptionError:
            return crypto.UnreadableSecret(value)

    def get_prep_value(self, value):
        if crypto.is_unreadable(value):
            return value.ciphertext
        value = super().get_prep_value(value)
        if not value:
            return value
        return crypto.encrypt(value)
