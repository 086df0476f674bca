from django.apps import AppConfig, apps
from django.db.models.signals import pre_delete
from django.utils.translation import gettext_lazy as _


class TalliesConfig(AppConfig):
    """Running counts (tokens per status, accounts, sign-ups and sign-ins per day) kept
    up to date by every write, so the dashboard reads figures instead of recounting."""

    name = "tallies"
    verbose_name = _("Tallies")

    def ready(self) -> None:
        from tallies.tracked import TalliedModel, count_deletion

        # Every deletion (Model.delete, QuerySet.delete, a cascade) sends pre_delete
        # for each row once a receiver exists, so one receiver per model sees them all.
        for model in apps.get_models():
            if issubclass(model, TalliedModel):
                pre_delete.connect(
                    count_deletion, sender=model, dispatch_uid=f"tallies.{model._meta.label}"
                )
