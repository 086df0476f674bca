"""Export on the Profile admin: the list's Export button and an "Export selected" action.

`ProfileExportMixin` goes in front of `admin.ModelAdmin` in the Profile admin's bases.
It keeps import-export's screens (the Export button, the format and field picker) and
replaces what happens after them:
- the button exports exactly the filtered/searched list; the action exports a
  selection, and "select all N" becomes the list's filters again, never a list of
  100k primary keys posted back (no TooManyFieldsSent, no per-pk choice list);
- CSV and JSON stream from a server-side cursor; XLSX is built in the request up to
  settings.EXPORT_XLSX_SYNC_LIMIT rows and by a background job beyond;
- every view and the action check the export permission themselves
  (admin_ext.permissions).
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext, gettext_lazy
from import_export.admin import ExportMixin
from import_export.formats import base_formats
from import_export.forms import SelectableFieldsExportForm
from import_export.signals import post_export

from accounts.models import TokenStatus
from admin_ext.admin_guard import ChoiceListFilter, has_nul, nul_refused
from admin_ext.export import (
    FORMATS,
    STATUS_NONE,
    TEXT_WRITERS,
    ExportFormat,
    ProfileResource,
    export_columns,
    export_filename,
    filter_profiles,
    iter_export,
    write_export,
)
from admin_ext.export_tasks import export_file_path, start_export_job
from admin_ext.models import ExportJob, ExportStatus
from admin_ext.permissions import guarded_action, may_export, require


class CurrentTokenStatusFilter(ChoiceListFilter):
    """The list filter `export_profiles --token-status` mirrors: the current token's status."""

    title = gettext_lazy("current token status")
    parameter_name = "token_status"

    def lookups(self, request, model_admin):
        return [*TokenStatus.choices, (STATUS_NONE, gettext("No token"))]

    def filter(self, queryset: QuerySet, value: str) -> QuerySet:
        return filter_profiles(queryset, token_status=value)


# --token-status and --joined-after ("joined X" is x_created_at's verbose name).
EXPORT_LIST_FILTERS = [CurrentTokenStatusFilter, ("x_created_at", admin.DateFieldListFilter)]


FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "json": "JSON"}


class ProfileExportForm(SelectableFieldsExportForm):
    """import-export's format and field picker, plus the action's selection.

    The selection travels as one comma-separated field rather than one field per
    primary key, so it never meets DATA_UPLOAD_MAX_NUMBER_FIELDS.
    """

    # One admin page at most: a bigger selection should be "select all" (filters).
    MAX_SELECTED = 10_000

    selected = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, formats, resources, **kwargs) -> None:
        super().__init__(formats, resources, **kwargs)
        # import-export's per-pk hidden inputs are what "select all" must not produce.
        del self.fields["export_items"]
        # No "---" first choice: CSV (the first format) is picked until staff pick another.
        file_format = self.fields["format"]
        choices = [(value, label) for value, label in file_format.choices if value]
        file_format.choices = [(value, FORMAT_LABELS.get(name, name)) for value, name in choices]
        file_format.initial = file_format.choices[0][0]
        file_format.label = gettext("File format")

    def _get_field_label(self, resource, field_name: str) -> str:
        return resource.fields[field_name].column_name

    def clean_selected(self) -> list[int]:
        text = self.cleaned_data["selected"].strip()
        if not text:
            return []
        try:
            ids = [int(pk) for pk in text.split(",")]
        except ValueError as exc:
            raise forms.ValidationError(
                gettext("The selection is not a list of profile ids.")
            ) from exc
        if len(ids) > self.MAX_SELECTED:
            raise forms.ValidationError(
                gettext(
                    "Too many profiles picked one by one; filter the list and export it instead."
                )
            )
        return ids


class ProfileExportMixin(ExportMixin):
    resource_classes = [ProfileResource]
    export_form_class = ProfileExportForm
    export_template_name = "admin_ext/export.html"
    export_job_template_name = "admin_ext/export_job.html"

    def get_list_filter(self, request: HttpRequest) -> list:
        """The admin's filters plus those `export_profiles` mirrors, so every command
        filter has its counterpart on the list being exported."""
        filters = list(super().get_list_filter(request))
        filters += [needed for needed in EXPORT_LIST_FILTERS if needed not in filters]
        return filters

    @property
    def export_formats(self) -> list[type[base_formats.Format]]:
        return [base_formats.CSV, base_formats.XLSX, base_formats.JSON]

    def has_export_permission(self, request: HttpRequest) -> bool:
        """An export shows every profile it holds: it needs the view permission too."""
        return may_export(request.user) and self.has_view_permission(request)

    def get_urls(self):
        prefix = "{}_{}".format(*self.get_model_info())
        job_urls = [
            path(
                "export/jobs/<int:job_id>/",
                self.admin_site.admin_view(self.export_job_view),
                name=f"{prefix}_export_job",
            ),
            path(
                "export/jobs/<int:job_id>/download/",
                self.admin_site.admin_view(self.export_download_view),
                name=f"{prefix}_export_download",
            ),
        ]
        return job_urls + super().get_urls()

    def _admin_url(self, name: str, *args) -> str:
        app_label, model_name = self.get_model_info()
        return reverse(f"{self.admin_site.name}:{app_label}_{model_name}_{name}", args=args)

    # --- the action ----------------------------------------------------------------

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if self.has_export_permission(request):
            actions["export_profiles"] = self.get_action("export_profiles")
        return actions

    @guarded_action(description=gettext_lazy("Export selected profiles"), permissions=["export"])
    def export_profiles(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse:
        # request.GET is the list's own query string: its filters and search.
        export_url = self._admin_url("export")
        if request.GET:
            export_url += "?" + request.GET.urlencode()
        if request.POST.get("select_across") == "1":
            return HttpResponseRedirect(export_url)
        selected = request.POST.getlist(ACTION_CHECKBOX_NAME)
        request.current_app = self.admin_site.name
        form = self.get_export_form_class()(
            self.get_export_formats(),
            self.get_export_resource_classes(request),
            initial={"selected": ",".join(selected)},
        )
        context = self._export_context(request, form, queryset.count(), bool(selected))
        context["export_url"] = export_url
        return TemplateResponse(request, self.export_template_name, context)

    # --- the export page -------------------------------------------------------------

    def export_action(self, request: HttpRequest) -> HttpResponse:
        require(self, request, ["export"])
        if has_nul(request.GET):
            return nul_refused()
        request.current_app = self.admin_site.name
        try:
            queryset = self.get_export_queryset(request)
        except IncorrectLookupParameters:
            messages.error(
                request, gettext("Those list filters are not valid; nothing was exported.")
            )
            return HttpResponseRedirect(self._admin_url("changelist"))
        form = self.get_export_form_class()(
            self.get_export_formats(),
            self.get_export_resource_classes(request),
            data=request.POST or None,
        )
        if form.is_valid():
            if form.cleaned_data["selected"]:
                queryset = queryset.filter(pk__in=form.cleaned_data["selected"])
            file_format = self.get_export_formats()[int(form.cleaned_data["format"])]()
            fields = form.get_selected_resource_export_fields()
            return self.export_response(request, queryset, file_format.get_extension(), fields)
        selected = form.data.get("selected") if form.is_bound else ""
        context = self._export_context(request, form, queryset.count(), bool(selected))
        return TemplateResponse(request, self.export_template_name, context)

    def _export_context(self, request, form, count: int, is_selection: bool) -> dict:
        context = self.init_request_context_data(request, form)
        context.update(
            export_count=count,
            export_is_selection=is_selection,
            export_filters=request.GET.urlencode(),
            xlsx_sync_limit=settings.EXPORT_XLSX_SYNC_LIMIT,
        )
        return context

    def export_response(
        self, request: HttpRequest, queryset: QuerySet, format_name: str, fields: list[str]
    ) -> HttpResponse:
        """The file, streamed; or, for a big XLSX, a background job and its page."""
        export_format = FORMATS[format_name]
        columns = export_columns(fields)
        post_export.send(sender=None, model=self.model)
        if format_name in TEXT_WRITERS:
            response = StreamingHttpResponse(
                iter_export(queryset, columns, format_name),
                content_type=export_format.content_type,
            )
            return self._as_attachment(response, export_format)
        if queryset.count() > settings.EXPORT_XLSX_SYNC_LIMIT:
            job = start_export_job(
                user=request.user,
                queryset=queryset,
                fields=[column.name for column in columns],
                summary=self._summary(request),
            )
            messages.info(
                request, gettext("The spreadsheet is being written; it will appear here.")
            )
            return HttpResponseRedirect(self._admin_url("export_job", job.pk))
        response = HttpResponse(content_type=export_format.content_type)
        write_export(queryset, columns, format_name, response)
        return self._as_attachment(response, export_format)

    @staticmethod
    def _as_attachment(response: HttpResponse, export_format: ExportFormat) -> HttpResponse:
        response["Content-Disposition"] = (
            f'attachment; filename="{export_filename(export_format)}"'
        )
        return response

    @staticmethod
    def _summary(request: HttpRequest) -> str:
        selected = request.POST.get("selected", "")
        if selected:
            return f"{len(selected.split(','))} selected profiles"
        filters = request.GET.urlencode()
        return f"the profile list filtered by {filters}" if filters else "all profiles"

    # --- background jobs -------------------------------------------------------------

    def _own_job(self, request: HttpRequest, job_id: int) -> ExportJob:
        """Only the person who asked for a file may see or fetch it, and only while
        they still may export."""
        require(self, request, ["export"])
        job = ExportJob.objects.filter(pk=job_id, requested_by=request.user).first()
        if job is None:
            raise Http404("No such export.")
        return job

    def export_job_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = self._own_job(request, job_id)
        request.current_app = self.admin_site.name
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Profile export #%(pk)s") % {"pk": job.pk},
            "opts": self.model._meta,
            "job": job,
            "download_url": self._admin_url("export_download", job.pk),
        }
        return TemplateResponse(request, self.export_job_template_name, context)

    def export_download_view(self, request: HttpRequest, job_id: int) -> FileResponse:
        job = self._own_job(request, job_id)
        if job.status != ExportStatus.DONE:
            raise Http404("This export has no file yet.")
        file_path = export_file_path(job)
        if not file_path.is_file():
            raise Http404("This export's file is gone; please export again.")
        return FileResponse(
            file_path.open("rb"),
            as_attachment=True,
            filename=job.download_name,
            content_type=FORMATS[job.format].content_type,
        )
