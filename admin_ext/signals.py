"""Signal receivers of the staff tools (connected in AdminExtConfig.ready)."""

from allauth.account.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.outcomes import Outcome
from accounts.revocation import revocation_attempted
from accounts.signin import KIND_BY_PROVIDER
from admin_ext.models import AuditEvent, AuditOutcome, SignInEvent, TokenAction

REVOCATION_ACTOR = "site (revocation)"


@receiver(user_logged_in, dispatch_uid="admin_ext.record_sign_in_with_x")
def record_sign_in_with_x(sender, request: HttpRequest, user, **kwargs) -> None:
    """Count sign-ins with X (not staff password logins) for the dashboard chart."""
    sociallogin = kwargs.get("sociallogin")
    method = KIND_BY_PROVIDER.get(sociallogin.account.provider) if sociallogin else None
    if method:
        SignInEvent.objects.create(user=user, method=method)


@receiver(revocation_attempted, dispatch_uid="admin_ext.record_revocation_attempt")
def record_revocation_attempt(
    sender, outcome: Outcome, reason: str, kind: str, x_user_id: str, screen_name: str, **kwargs
) -> None:
    """Every attempt to end a grant the site gave up (Disconnect X, a deletion, a retry of
    a pending revocation) is one audit event, whether X confirmed it or not."""
    AuditEvent.objects.create(
        actor=None,
        actor_label=REVOCATION_ACTOR,
        action=TokenAction.REVOKE,
        token_kind=kind,
        x_user_id=x_user_id,
        screen_name=screen_name,
        outcome=AuditOutcome.OK if outcome.ok else AuditOutcome.FAILED,
        token_status=outcome.status,
        http_status=outcome.http_status,
        message=f"{reason}: {outcome.message}",
    )
