"""Signal receivers of the staff tools (connected in AdminExtConfig.ready)."""

from allauth.account.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.signin import KIND_BY_PROVIDER
from admin_ext.models import SignInEvent


@receiver(user_logged_in, dispatch_uid="admin_ext.record_sign_in_with_x")
def record_sign_in_with_x(sender, request: HttpRequest, user, **kwargs) -> None:
    """Count sign-ins with X (not staff password logins) for the dashboard chart."""
    sociallogin = kwargs.get("sociallogin")
    method = KIND_BY_PROVIDER.get(sociallogin.account.provider) if sociallogin else None
    if method:
        SignInEvent.objects.create(user=user, method=method)
