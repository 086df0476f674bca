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

`iter_export()` and `write_export()` are the one way in: the admin, the command and
background jobs call nothing else. On PostgreSQL a CSV is made by the database
itself (`COPY (SELECT ...) TO STDOUT`, see `iter_csv_copy`), several times faster
than rendering each cell in Python, and byte for byte the same file.

The stock import-export path (`ProfileResource().export()`) builds a whole tablib
Dataset in memory; it still works and gives the same values, but only the writers
here are used for real exports.
"""

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from itertools import islice
from typing import IO, Any

from django.conf import settings
from django.contrib.admin.utils import lookup_spawns_duplicates
from django.db import connections, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.text import smart_split, unescape_string_literal
from import_export import fields, resources, widgets
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from psycopg import ClientCursor, Copy

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
    """Renders a stored choice ("oauth2") as its label ("OAuth 2.0").

    A stored value outside the choices is shown as it is, cleaned like text from X.
    """

    def __init__(self, choices: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        self.labels = dict(choices)

    def render(self, value: Any, obj: Any = None, **kwargs: Any) -> str:
        if value is None:
            return ""
        return clean_text(str(self.labels.get(value, value)), multiline=True)


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


def _default_datetime(widget: widgets.DateTimeWidget) -> bool:
    return widget.formats[0] == _DEFAULT_DATETIME_FORMAT and settings.USE_TZ


def _datetime_text(widget: widgets.DateTimeWidget) -> Renderer:
    """The widget's "local time, %Y-%m-%d %H:%M:%S", without its per-cell lookups.

    The first 19 characters of datetime's isoformat(" ", "seconds") are exactly that
    format, at a fraction of strftime's cost; any other format goes through the widget.
    """
    if not _default_datetime(widget):
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


# --- CSV straight from PostgreSQL -----------------------------------------------------

# The UTF-8 of every character clean_text() removes or replaces, but the line feed
# (kept in a bio, and the end of every COPY row): C0 controls and DEL, C1 controls,
# line/paragraph separators with the bidi embeddings and overrides (U+2028-202E),
# bidi isolates (U+2066-2069), the noncharacters U+FFFE and U+FFFF.
_NEEDS_CLEANING = re.compile(
    rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]"
    rb"|\xef\xbf[\xbe\xbf]"
)
# Deleting these from a chunk leaves the bytes that may start such a character: a
# quicker first look than the pattern, which only runs when something is left.
_NOT_SUSPECT = bytes(
    byte
    for byte in range(256)
    if not ((byte < 0x20 and byte != 0x0A) or byte == 0x7F or byte in (0xC2, 0xE2, 0xEF))
)


def _neutralised_sql(text: str) -> str:
    """`neutralise_formula` in SQL, for "=", "+", "-" and "@".

    A tab or carriage return from its list never gets this far: clean_text()
    replaces them, so a row holding one is rendered again in Python.
    """
    return f"CASE WHEN left({text}, 1) IN ('=', '+', '-', '@') THEN '''' || {text} ELSE {text} END"


def _copy_cell(widget: widgets.Widget, column: str) -> tuple[str, list] | None:
    """SQL giving `column`'s CSV text as `row_renderer` does, or None if it cannot.

    Text is neutralised but not cleaned here: rows that need cleaning are found
    and rendered again in Python. Empty text becomes NULL, because COPY quotes an
    empty string ("") and writes NULL as nothing, which is what csv writes for "".
    """
    kind = type(widget)
    if kind is widgets.IntegerWidget:
        return column, []
    if kind is widgets.BooleanWidget:
        return f"CASE WHEN {column} THEN '1' WHEN NOT {column} THEN '0' END", []
    if kind is widgets.DateTimeWidget and _default_datetime(widget):
        # A timestamp's ISO text is "%Y-%m-%d %H:%M:%S" once cut to the second, at a
        # fraction of to_char()'s cost; `_copy_statement` checks the DateStyle.
        zone = timezone.get_current_timezone_name()
        return f"date_trunc('second', {column} AT TIME ZONE %s)", [zone]
    if kind is XTextWidget:
        return f"NULLIF({_neutralised_sql(column)}, '')", []
    if kind is ChoiceLabelWidget:
        labels = " ".join("WHEN %s THEN %s" for _ in widget.labels)
        # Labels are lazy translations: the database gets their text in the language
        # active now, as the Python writer renders them.
        params = [str(text) for pair in widget.labels.items() for text in pair]
        other = f"NULLIF({_neutralised_sql(column)}, '')"
        return f"CASE {column} {labels} ELSE {other} END", params
    return None


def _copy_statement(queryset: QuerySet, columns: Sequence[Column]) -> tuple[str, list] | None:
    """`COPY (SELECT ...) TO STDOUT` of the export's rows with their cells rendered.

    The rows are exactly `export_rows()`'s (same columns, filters and order): that
    query runs as a subquery and SQL renders its values. None when COPY cannot give
    the same bytes: not PostgreSQL, a DateStyle other than ISO (psycopg reads
    timestamps only in ISO anyway), a widget without an SQL twin, or a single
    column (csv writes a lone empty cell as "", COPY as an empty line).
    """
    connection = connections[queryset.db]
    if connection.vendor != "postgresql" or len(columns) < 2:
        return None
    connection.ensure_connection()
    if not connection.connection.info.parameter_status("DateStyle").startswith("ISO"):
        return None
    names = [f"c{index}" for index in range(len(columns))]
    cells = [
        _copy_cell(column.widget, f"export_row.{name}")
        for column, name in zip(columns, names, strict=True)
    ]
    if None in cells:
        return None
    rows = export_rows(queryset, columns).values_list(
        *[column.attribute for column in columns], "pk"
    )
    inner, inner_params = rows.query.get_compiler(queryset.db, elide_empty=False).as_sql()
    select = ", ".join(sql for sql, _ in cells)
    # Only our own SQL and Django's compiled query; every value is a parameter.
    statement = (
        f"COPY (SELECT {select} FROM ({inner}) AS export_row ({', '.join(names)}, pk) "  # noqa: S608
        "ORDER BY export_row.pk) TO STDOUT (FORMAT csv)"
    )
    return statement, [param for _, params in cells for param in params] + list(inner_params)


def _python_cell(widget: widgets.Widget) -> Renderer:
    """What Python still does to a cell of a COPY row that needs cleaning: text and
    labels are cleaned and neutralised; numbers, flags and dates come out of SQL final.

    A cell SQL neutralised starts with "'" and keeps it: cleaning never changes the
    first character of a cell that starts with "=", "+", "-" or "@".
    """
    if type(widget) in (XTextWidget, ChoiceLabelWidget):
        return _safe_text
    return str


def iter_csv_copy(
    queryset: QuerySet, columns: Sequence[Column], progress: Progress | None = None
) -> Iterator[str]:
    """`iter_csv` for PostgreSQL: the same bytes, made by `COPY ... TO STDOUT`.

    PostgreSQL sends one message per row (its COPY protocol says so), each ending
    in "\\n"; csv ends a row with "\\r\\n" but leaves a line break inside a cell as
    it is. A chunk whose only line breaks are row ends and which has nothing to
    clean (the usual case) goes on whole, its row ends replaced; otherwise row by
    row, and a row that needs cleaning is parsed and written again through the
    Python renderers. Call only when `_copy_statement` is not None.
    """
    statement, params = _copy_statement(queryset, columns)
    header = io.StringIO()
    csv.writer(header).writerow([neutralise_formula(column.header) for column in columns])
    yield header.getvalue()
    renderers = [_python_cell(column.widget) for column in columns]
    written = 0
    # A download stopped halfway makes psycopg cancel the COPY, which aborts the
    # transaction it runs in; this block (a savepoint inside a caller's transaction)
    # is rolled back then, so the connection is fit for whatever comes next.
    with (
        transaction.atomic(using=queryset.db),
        connections[queryset.db].cursor() as cursor,
        _copy(cursor, statement, params) as copy,
    ):
        while rows := list(islice(copy, CHUNK_SIZE)):
            yield _copy_chunk(rows, renderers)
            written += len(rows)
            if progress:
                progress(written)
    if progress and written % CHUNK_SIZE == 0:
        progress(written)


def _copy_chunk(rows: list, renderers: Sequence[Renderer]) -> str:
    chunk = b"".join(rows)
    plain = chunk.count(b"\n") == len(rows) and not (
        chunk.translate(None, _NOT_SUSPECT) and _NEEDS_CLEANING.search(chunk)
    )
    if plain:
        return chunk.replace(b"\n", b"\r\n").decode()
    lines = []
    for row in rows:
        line = row[: len(row) - 1]
        lines.append(_rewrite(line, renderers) if _NEEDS_CLEANING.search(line) else line)
    return (b"\r\n".join(lines) + b"\r\n").decode()


def _rewrite(line: memoryview, renderers: Sequence[Renderer]) -> bytes:
    """One COPY row (without its "\\n") as the Python renderers would have written it."""
    cells = next(csv.reader([bytes(line).decode()]))
    out = io.StringIO()
    csv.writer(out).writerow([render(cell) for render, cell in zip(renderers, cells, strict=True)])
    return out.getvalue().removesuffix("\r\n").encode()


def _copy(cursor, statement: str, params: Sequence) -> Copy:
    """`cursor.copy()` with the parameters bound by psycopg on this side.

    Django's debugging cursor (DEBUG, or a test capturing queries) passes COPY a
    statement but no parameters, so they are bound before, by psycopg's own
    client-side binding.
    """
    return cursor.copy(ClientCursor(cursor.connection).mogrify(statement, params))


def iter_export(
    queryset: QuerySet,
    columns: Sequence[Column],
    format_name: str,
    progress: Progress | None = None,
) -> Iterator[str]:
    """The profiles of `queryset` as CSV or JSON text, in pieces of about CHUNK_SIZE rows."""
    if format_name == "csv" and _copy_statement(queryset, columns) is not None:
        return iter_csv_copy(queryset, columns, progress)
    return TEXT_WRITERS[format_name](stream_rows(queryset, columns), columns, progress)


def write_export(
    queryset: QuerySet,
    columns: Sequence[Column],
    format_name: str,
    target: str | IO,
    progress: Progress | None = None,
) -> None:
    """The profiles of `queryset` written to `target` in any of FORMATS.

    XLSX takes a path or a binary file; CSV and JSON a text file.
    """
    if format_name == "xlsx":
        write_xlsx(stream_rows(queryset, columns), columns, target, progress)
        return
    for piece in iter_export(queryset, columns, format_name, progress):
        target.write(piece)


def export_filename(export_format: ExportFormat, when: datetime | None = None) -> str:
    stamp = timezone.localtime(when or timezone.now()).strftime("%Y-%m-%d-%H%M%S")
    return f"profiles-{stamp}.{export_format.extension}"
