from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import XToken

BATCH_SIZE = 500
SECRET_COLUMNS = ["access_token", "token_secret", "refresh_token"]


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored X token with the newest key (the first in "
        "TOKEN_ENCRYPTION_KEYS). Run after putting a new key in front; the old keys "
        "can be removed once it has finished."
    )

    def handle(self, *args, **options) -> None:
        pks = list(XToken.objects.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), BATCH_SIZE):
            rotate_batch(pks[start : start + BATCH_SIZE])
        self.stdout.write(f"Re-encrypted {len(pks)} tokens with the newest key.")


def rotate_batch(pks: list[int]) -> None:
    """Loading decrypts with any key; saving encrypts with the first.

    Rows are locked while rewritten so a refresh running at the same moment is not
    overwritten with the token it just replaced.
    """
    with transaction.atomic():
        for token in XToken.objects.select_for_update().filter(pk__in=pks):
            token.save(update_fields=SECRET_COLUMNS)
