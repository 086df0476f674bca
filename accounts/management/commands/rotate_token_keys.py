from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import crypto
from accounts.models import SECRET_COLUMNS, PendingRevocation, TokenStatus, XToken

BATCH_SIZE = 500


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored X token (and every pending revocation) with the newest "
        "key (the first in TOKEN_ENCRYPTION_KEYS). Run after putting a new key in front; "
        "the old keys can be removed once it has finished. Tokens no configured key can "
        "decrypt are left as they are, marked 'Cannot be decrypted' and counted."
    )

    def handle(self, *args, **options) -> None:
        unreadable = 0
        for model in (XToken, PendingRevocation):
            pks = list(model.objects.order_by("pk").values_list("pk", flat=True))
            for start in range(0, len(pks), BATCH_SIZE):
                unreadable += rotate_batch(model, pks[start : start + BATCH_SIZE])
            if model is XToken:
                self.stdout.write(f"Re-encrypted {len(pks)} tokens with the newest key.")
        if unreadable:
            self.stderr.write(
                f"{unreadable} rows could not be decrypted with any configured key and were "
                "left unchanged: put their key back in TOKEN_ENCRYPTION_KEYS."
            )


def rotate_batch(model, pks: list[int]) -> int:
    """Loading decrypts with any key; saving encrypts with the first. Returns how many
    rows no key decrypts (their ciphertext is written back unchanged).

    Rows are locked while rewritten so a refresh running at the same moment is not
    overwritten with the token it just replaced.
    """
    unreadable = 0
    with transaction.atomic():
        for row in model.objects.select_for_update().filter(pk__in=pks):
            fields = list(SECRET_COLUMNS)
            if any(crypto.is_unreadable(getattr(row, name)) for name in SECRET_COLUMNS):
                unreadable += 1
                if model is XToken:
                    row.status = TokenStatus.UNREADABLE
                    row.last_error = crypto.UNREADABLE_MESSAGE
                    fields += ["status", "last_error"]
            row.save(update_fields=fields)
    return unreadable
