import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

DEMO_USERNAME = "demo-staff"


class Command(BaseCommand):
    help = "Create a demo staff (superuser) account with a generated password, once."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        if User.objects.filter(is_staff=True).exists():
            staff = User.objects.filter(is_staff=True).order_by("pk").first()
            self.stdout.write(
                f"Staff account exists: {staff.get_username()} "
                "(its password was printed when it was created)."
            )
            return
        # A fixed demo password would become everyone's admin password; generate one.
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=DEMO_USERNAME, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created demo staff account: username {DEMO_USERNAME!r}, "
                f"password {password!r} (shown only this once)."
            )
        )
