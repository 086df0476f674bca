"""Rules every admin page obeys, whichever app registered it (issue 15).

Django's admin hides an action a user may not run but, when it is posted anyway,
answers with the list again (200) or a redirect, and it offers an action that
declares no permission to anyone who may merely view the list (allauth's "mark
verified", axes' "clean up"). It also passes list filter and search values to the
database as they came, and PostgreSQL refuses a NUL byte with an error (a 500).
`guard_every_admin` re-registers each ModelAdmin of a site as a subclass that:
- answers 403 to a POST naming an action the user is not offered;
- offers an action that declares no permission only to staff who may change the model;
- answers 400 to a list whose query string holds a NUL byte;
- has the permission methods of admin_ext.permissions, whose `guarded_action`
  makes each action check its own permission as well.
Our own list filters derive from `ChoiceListFilter`, which lets only its own
choices reach the database.
"""

from axes.admin import AccessAttemptAdmin
from axes.handlers.proxy import AxesProxyHandler
from axes.models import AccessAttempt
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.utils.translation import gettext, gettext_lazy

from admin_ext.permissions import ActionPermissions, guarded_action

NUL = "\x00"


def has_nul(query: QueryDict) -> bool:
    return any(NUL in key or NUL in "".join(values) for key, values in query.lists())


def nul_refused() -> HttpResponse:
    return HttpResponseBadRequest(gettext("Query strings cannot contain NUL characters."))


class GuardedAdminMixin(ActionPermissions):
    """Goes in front of any ModelAdmin class: see the module docstring."""

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if self.has_change_permission(request):
            return actions
        return {
            name: action
            for name, action in actions.items()
            if getattr(action[0], "allowed_permissions", None)
        }

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if has_nul(request.GET):
            return nul_refused()
        posted_action = request.POST.get("action", "") if request.method == "POST" else ""
        if posted_action and posted_action not in self.get_actions(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)


class ChoiceListFilter(admin.SimpleListFilter):
    """A list filter that filters only by one of its own choices.

    Any other value (a NUL byte, 10 kB of junk) never reaches the database: the list
    answers "invalid filter" (IncorrectLookupParameters) as for Django's own filters.
    """

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        raise NotImplementedError

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        if value not in {str(choice) for choice, _ in self.lookup_choices}:
            raise IncorrectLookupParameters(f"{self.parameter_name}: not a choice")
        return self.filter(queryset, value)


class AxesAccessAttemptAdmin(AccessAttemptAdmin):
    """axes' own admin, whose "clean up" action needs the delete permission and works.

    axes 8's action reads request attributes that only its login handlers set, so
    outside a login it fails with AttributeError; setting them first is what those
    handlers do.
    """

    @guarded_action(description=gettext_lazy("Clean up expired attempts"), permissions=["delete"])
    def cleanup_expired_attempts(self, request: HttpRequest, queryset) -> None:
        AxesProxyHandler.update_request(request)
        super().cleanup_expired_attempts(request, queryset)


def guard_every_admin(site: admin.AdminSite) -> None:
    """Re-register every ModelAdmin on `site` with GuardedAdminMixin in front.

    Called once, after every app's admin module has registered its models.
    """
    if site.is_registered(AccessAttempt):
        site.unregister(AccessAttempt)
        site.register(AccessAttempt, AxesAccessAttemptAdmin)
    for model in apps.get_models():
        if not site.is_registered(model):
            continue
        admin_class = type(site.get_model_admin(model))
        if issubclass(admin_class, GuardedAdminMixin):
            continue
        guarded = type(f"Guarded{admin_class.__name__}", (GuardedAdminMixin, admin_class), {})
        site.unregister(model)
        site.register(model, guarded)
