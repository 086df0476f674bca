"""Exporting profiles: one column definition for the admin, the command and background jobs.

`ProfileResource` (django-import-export) is the single source of the columns: their
names, their order and how each value is rendered. Everything that writes an export
(CSV and JSON streamed to the browser, XLSX in a request or in a background job, the
`export_profiles` command) reads rows through `export_rows()` and renders them with
the resource's widgets, so a file is the same whichever way it was made.

Three rules hold on every path:
- Secrets never leave the database. Rows are `.values_list()` tuples of an explicit
  list of columns; no `XToken` is ever instantiated, so the encrypted token columns
  are neither selected nor decrypted, whatever fields staff pick.
- Text is shown, never obeyed. Control characters (ESC, BEL, NUL...) and bidi
  overrides from X, including any stored before X's values were cleaned, are
  removed, so `export_profiles -o -` cannot drive a terminal; cells a spreadsheet
  would run as a formula are neutralised.
- Memory stays flat. Rows come from a server-side cursor in chunks and are written
  out chunk by chunk; nothing holds the whole table.

The stock import-export path (`ProfileResource().export()`) builds a whole tablib
Dataset in memory; it still works and gives the same values, but only the writers
here are used for real exports.
"""

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import IO, Any

from django.conf import settings
from django.contrib.admin.utils import lookup_spawns_duplicates
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.text import smart_split, unescape_string_literal
from import_export import fields, resources, widgets
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from accounts.models import Profile, TokenKind, TokenStatus, current_token_column
from accounts.x_values import clean_text

CHUNK_SIZE = 2000

# Spreadsheet programs run a cell that starts with one of these as a formula
# (OWASP "CSV injection"); import-export's own escaping only knows "=".
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# The admin's search box and `--search` look in the same places.
SEARCH_FIELDS = ("screen_name", "name", "x_user_id", "user__email")

STATUS_NONE = "none"


def neutralise_formula(text: str) -> str:
    """Make a spreadsheet show `text` instead of evaluating it, by prefixing `'`."""
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


class XTextWidget(widgets.CharWidget):
    """Text from X without its control and bidi characters (see accounts.x_values)."""

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> Any:
        rendered = super().render(value, obj, **kwargs)
        return clean_text(rendered, multiline=True) if isinstance(rendered, str) else rendered


class ChoiceLabelWidget(widgets.CharWidget):
    """Renders a stored choice ("oauth2") as its label ("OAuth 2.0")."""

    def __init__(self, choices: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        self.labels = dict(choices)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        if value is None:
            return ""
        return str(self.labels.get(value, value))


def _text(column_name: str, attribute: str) -> fields.Field:
    return fields.Field(attribute=attribute, column_name=column_name, widget=XTextWidget())


def _number(column_name: str, attribute: str) -> fields.Field:
    return fields.Field(
        attribute=attribute, column_name=column_name, widget=widgets.IntegerWidget()
    )


def _flag(column_name: str, attribute: str) -> fields.Field:
    return fields.Field(
        attribute=attribute, column_name=column_name, widget=widgets.BooleanWidget()
    )


def _moment(column_name: str, attribute: str) -> fields.Field:
    return fields.Field(
        attribute=attribute, column_name=column_name, widget=widgets.DateTimeWidget()
    )


def _choice(column_name: str, attribute: str, choices) -> fields.Field:
    return fields.Field(
        attribute=attribute, column_name=column_name, widget=ChoiceLabelWidget(choices)
    )


# Row values that are not plain Profile columns. Only these expressions and the
# attributes below are ever selected; nothing here can reach an encrypted column.
COMPUTED = {
    "signed_up_here": lambda: F("user__date_joined"),
    "last_sign_in": lambda: F("user__last_login"),
    "token_kind": lambda: current_token_column("kind"),
    "token_status": lambda: current_token_column("status"),
    "token_expiry": lambda: current_token_column("expires_at"),
}


class ProfileResource(resources.ModelResource):
    """The export's columns, in order, with human names.

    Export only: there is no profile import, because profiles come from X.
    """

    x_user_id = _text("X user id", "x_user_id")
    screen_name = _text("screen name", "screen_name")
    name = _text("name", "name")
    location = _text("location", "location")
    url = _text("url", "url")
    description = _text("description", "description")
    followers = _number("followers", "followers_count")
    following = _number("following", "following_count")
    protected = _flag("protected", "protected")
    verified = _flag("verified", "verified")
    joined_x = _moment("joined X", "x_created_at")
    signed_up_here = _moment("signed up here", "signed_up_here")
    last_sign_in = _moment("last sign-in", "last_sign_in")
    last_synced = _moment("last synced", "last_synced_at")
    token_kind = _choice("token kind", "token_kind", TokenKind.choices)
    token_status = _choice("token status", "token_status", TokenStatus.choices)
    token_expiry = _moment("token expiry", "token_expiry")

    class Meta:
        model = Profile
        fields = (
            "x_user_id",
            "screen_name",
            "name",
            "location",
            "url",
            "description",
            "followers",
            "following",
            "protected",
            "verified",
            "joined_x",
            "signed_up_here",
            "last_sign_in",
            "last_synced",
            "token_kind",
            "token_status",
            "token_expiry",
        )
        export_order = fields

    def get_queryset(self) -> QuerySet[Profile]:
        return x_profiles()

    def filter_export(self, queryset: QuerySet, **kwargs: Any) -> QuerySet:
        """Turn whatever Profile queryset import-export was given into plain row dicts.

        This keeps even the stock `export()` path on `.values()`, never on model
        instances whose related tokens could be loaded.
        """
        columns = export_columns(kwargs.get("export_fields"))
        return export_rows(queryset, columns, as_dicts=True)


@dataclass(frozen=True)
class Column:
    """One export column: where its value comes from and how the resource renders it."""

    name: str
    header: str
    attribute: str
    widget: widgets.Widget


def export_columns(field_names: Sequence[str] | None = None) -> list[Column]:
    """The resource's columns, in its order, limited to `field_names` when given.

    Unknown names are ignored rather than trusted: only the resource's own
    fields can ever be selected.
    """
    resource = ProfileResource()
    wanted = set(field_names) if field_names else None
    return [
        Column(name, field.column_name, field.attribute, field.widget)
        for name in resource.get_export_order()
        if wanted is None or name in wanted
        for field in [resource.fields[name]]
    ]


def field_choices() -> list[tuple[str, str]]:
    """(field name, column name) pairs, for staff picking fields."""
    return [(column.name, column.header) for column in export_columns()]


def x_profiles() -> QuerySet[Profile]:
    """Profiles of people who signed in with X: a staff account made with
    createsuperuser has an empty profile, which is no X account to list or export."""
    return Profile.objects.filter(x_user_id__isnull=False).exclude(x_user_id="")


def filter_profiles(
    queryset: QuerySet | None = None,
    *,
    token_status: str | None = None,
    joined_after: date | None = None,
    search: str | None = None,
) -> QuerySet:
    """Profiles matching the export filters; the command's equivalents of the admin's.

    - `token_status`: the status of the profile's current token (see `_current_token`),
      or "none" for profiles without any token;
    - `joined_after`: joined X on or after that day (UTC);
    - `search`: the admin's search semantics: every word must appear (case-insensitive)
      in the screen name, name, X user id or email; quote a phrase to keep it whole.
    """
    queryset = x_profiles() if queryset is None else queryset
    if token_status:
        queryset = queryset.annotate(current_token_status=current_token_column("status"))
        if token_status == STATUS_NONE:
            queryset = queryset.filter(current_token_status__isnull=True)
        else:
            queryset = queryset.filter(current_token_status=token_status)
    if joined_after:
        start = datetime.combine(joined_after, time.min, tzinfo=UTC)
        queryset = queryset.filter(x_created_at__gte=start)
    if search:
        queryset = search_profiles(queryset, search)
    return queryset


def search_profiles(queryset: QuerySet, text: str) -> QuerySet:
    """The same matching as `ModelAdmin.get_search_results` with `SEARCH_FIELDS`."""
    for word in smart_split(text):
        if word[0] in "\"'" and word[0] == word[-1] and len(word) > 1:
            word = unescape_string_literal(word)
        match = Q()
        for field in SEARCH_FIELDS:
            match |= Q(**{f"{field}__icontains": word})
        queryset = queryset.filter(match)
    if any(lookup_spawns_duplicates(Profile._meta, field) for field in SEARCH_FIELDS):
        queryset = queryset.distinct()
    return queryset


def export_rows(queryset: QuerySet, columns: Sequence[Column], *, as_dicts: bool = False):
    """The queryset as rows of exactly `columns`, in sign-up (pk) order.

    Whatever order the admin list was sorted in, exports are in pk order, so the
    same filter gives the same file from the admin and from the command, and the
    database can stream it straight off the primary key index.
    """
    attributes = [column.attribute for column in columns]
    computed = {name: COMPUTED[name]() for name in attributes if name in COMPUTED}
    queryset = queryset.prefetch_related(None).annotate(**computed).order_by("pk")
    if as_dicts:
        return queryset.values(*attributes)
    return queryset.values_list(*attributes)


def stream_rows(queryset: QuerySet, columns: Sequence[Column]) -> Iterator[tuple]:
    """Rows from a server-side cursor (PostgreSQL) or chunked fetches (SQLite)."""
    return export_rows(queryset, columns).iterator(chunk_size=CHUNK_SIZE)


Renderer = Callable[[Any], Any]


_BOOLEAN_TEXT = {True: "1", False: "0", None: ""}
_DEFAULT_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _integer_text(value: int | None) -> str:
    return "" if value is None else str(value)


def _plain_text(value: Any) -> str:
    return "" if value is None else clean_text(str(value), multiline=True)


def _safe_text(value: Any) -> str:
    return neutralise_formula(_plain_text(value))


def _datetime_text(widget: widgets.DateTimeWidget) -> Renderer:
    """The widget's "local time, %Y-%m-%d %H:%M:%S", without its per-cell lookups.

    The first 19 characters of datetime's isoformat(" ", "seconds") are exactly that
    format, at a fraction of strftime's cost; any other format goes through the widget.
    """
    if widget.formats[0] != _DEFAULT_DATETIME_FORMAT or not settings.USE_TZ:
        return widget.render
    zone = timezone.get_current_timezone()

    def render(value: datetime | None) -> str:
        if not value:
            return ""
        return value.astimezone(zone).isoformat(" ", "seconds")[:19]

    return render


def _neutralised(render: Renderer) -> Renderer:
    def render_safely(value: Any) -> Any:
        rendered = render(value)
        if isinstance(rendered, str) and rendered.startswith(FORMULA_TRIGGERS):
            return "'" + rendered
        return rendered

    return render_safely


def _text_renderer(widget: widgets.Widget, neutralise: bool) -> Renderer:
    """The resource's text for one column, with shortcuts for the widgets it uses.

    The shortcuts give the same text as the widgets (a test compares them with the
    stock export) at a fraction of the cost per cell. Numbers, booleans and dates
    are formatted here and cannot start a formula, so only text is neutralised.
    """
    kind = type(widget)
    if kind is widgets.IntegerWidget:
        return _integer_text
    if kind is widgets.BooleanWidget:
        return _BOOLEAN_TEXT.__getitem__
    if kind is widgets.DateTimeWidget:
        return _datetime_text(widget)
    if kind is XTextWidget:
        return _safe_text if neutralise else _plain_text
    return _neutralised(widget.render) if neutralise else widget.render


def _native_renderer(widget: widgets.Widget, neutralise: bool) -> Renderer:
    """The resource's values for spreadsheets: numbers, booleans and dates stay typed."""

    def render(value: Any) -> Any:
        return widget.render(value, force_native_type=True)

    return _neutralised(render) if neutralise else render


def _json_renderer(widget: widgets.Widget, neutralise: bool) -> Renderer:
    """JSON keeps numbers and booleans typed (an empty one is null); the rest is the
    text the CSV has, since JSON has no date type."""
    kind = type(widget)
    if kind in (widgets.IntegerWidget, widgets.BooleanWidget):
        return _json_scalar
    if kind is widgets.DateTimeWidget:
        text = _datetime_text(widget)
        return lambda value: text(value) or None
    return _text_renderer(widget, neutralise)


def _json_scalar(value: Any) -> Any:
    return value


def row_renderer(
    columns: Sequence[Column],
    *,
    native: bool = False,
    neutralise: bool = True,
    typed_json: bool = False,
) -> Callable[[tuple], list]:
    """A function turning one database row into the cells the resource would export."""
    make = _json_renderer if typed_json else _native_renderer if native else _text_renderer
    renderers = [make(column.widget, neutralise) for column in columns]
    return lambda row: [render(value) for render, value in zip(renderers, row, strict=True)]


Progress = Callable[[int], None]


def _counted(rows: Iterable[tuple], progress: Progress | None) -> Iterator[tuple]:
    """Pass rows through, telling `progress` the running total every chunk and at the end."""
    if progress is None:
        yield from rows
        return
    written = 0
    for row in rows:
        yield row
        written += 1
        if written % CHUNK_SIZE == 0:
            progress(written)
    progress(written)


def iter_csv(
    rows: Iterable[tuple], columns: Sequence[Column], progress: Progress | None = None
) -> Iterator[str]:
    """CSV text in pieces of about CHUNK_SIZE rows, formula cells neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise_formula(column.header) for column in columns])
    render = row_renderer(columns)
    pending = 0
    for row in _counted(rows, progress):
        writer.writerow(render(row))
        pending += 1
        if pending == CHUNK_SIZE:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def iter_json(
    rows: Iterable[tuple], columns: Sequence[Column], progress: Progress | None = None
) -> Iterator[str]:
    """A JSON array of objects keyed by column name, in pieces.

    Text is the resource's text, as in the CSV, but raw: JSON is read by programs,
    not evaluated by a spreadsheet, so formula neutralising would only corrupt it.
    Numbers and booleans stay JSON numbers and booleans.
    """
    headers = [column.header for column in columns]
    render = row_renderer(columns, neutralise=False, typed_json=True)
    separator = "\n"
    pieces = ["["]
    for row in _counted(rows, progress):
        pieces.append(separator)
        pieces.append(json.dumps(dict(zip(headers, render(row), strict=True)), ensure_ascii=False))
        separator = ",\n"
        if len(pieces) >= 2 * CHUNK_SIZE:
            yield "".join(pieces)
            pieces = []
    pieces.append("\n]\n")
    yield "".join(pieces)


def _spreadsheet_safe(value: Any) -> Any:
    # openpyxl refuses control characters; a bio containing one must not fail the export.
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value)
    return value


def write_xlsx(
    rows: Iterable[tuple],
    columns: Sequence[Column],
    target: str | IO[bytes],
    progress: Progress | None = None,
) -> None:
    """An XLSX workbook written row by row (openpyxl's write-only mode).

    Numbers, booleans and dates stay typed (as import-export does for binary
    formats); text cells are neutralised, since a cell starting with "=" would
    otherwise be stored as a live formula.
    """
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Profiles")
    sheet.append([neutralise_formula(column.header) for column in columns])
    render = row_renderer(columns, native=True)
    for row in _counted(rows, progress):
        sheet.append([_spreadsheet_safe(value) for value in render(row)])
    workbook.save(target)


@dataclass(frozen=True)
class ExportFormat:
    name: str
    extension: str
    content_type: str


FORMATS = {
    "csv": ExportFormat("csv", "csv", "text/csv; charset=utf-8"),
    "xlsx": ExportFormat(
        "xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    "json": ExportFormat("json", "json", "application/json; charset=utf-8"),
}

TEXT_WRITERS = {"csv": iter_csv, "json": iter_json}


def export_filename(export_format: ExportFormat, when: datetime | None = None) -> str:
    stamp = timezone.localtime(when or timezone.now()).strftime("%Y-%m-%d-%H%M%S")
    return f"profiles-{stamp}.{export_format.extension}"
