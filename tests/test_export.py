"""Profile exports without the admin: columns, formula safety, secrets, the command.

Profiles and tokens are made the way the site makes them: tokens issued by the X
sandbox, the profile filled from X through accounts.x_client, tokens kept with
accounts.tokens.store_token.
"""

import csv
import io
import json
import zipfile
from datetime import UTC, datetime

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import x_client
from accounts.models import SECRET_COLUMNS, Profile, TokenKind, XToken
from accounts.profiles import apply_x_user
from accounts.tokens import revoke_token, store_token
from admin_ext.export import (
    ProfileResource,
    export_columns,
    iter_csv,
    stream_rows,
    x_profiles,
)

pytestmark = pytest.mark.django_db

# The export's columns as ProfileResource defines them; the tests look columns up by
# their human names, so renaming or dropping one still fails them.
HEADERS = [column.header for column in export_columns()]

# Extra personas whose text would run as a formula in a spreadsheet.
FORMULA_PERSONAS = [
    {"screen_name": "plus_paula", "name": "+SUM(A1:A9)", "location": "@evil"},
    {"screen_name": "minus_mo", "name": "-2+3", "location": "\tTabbed"},
    {"screen_name": "at_ali", "name": "@HYPERLINK", "location": "\rReturned"},
]


def sign_in(x_sandbox, screen_name: str, *, oauth2: bool = True) -> Profile:
    """What a sign-in leaves behind: a user, a profile synced from X, encrypted tokens."""
    persona = next(p for p in x_sandbox.personas() if p["screen_name"] == screen_name)
    user = get_user_model().objects.create_user(username=screen_name, email=persona["email"])
    profile = user.x_profile
    oauth1 = x_sandbox.issue_tokens(screen_name, "oauth1")[0]
    apply_x_user(
        profile, x_client.verify_credentials(oauth1["oauth_token"], oauth1["oauth_token_secret"])
    )
    store_token(
        profile,
        TokenKind.OAUTH1,
        access_token=oauth1["oauth_token"],
        token_secret=oauth1["oauth_token_secret"],
    )
    profile.sign_in_method = TokenKind.OAUTH1
    if oauth2:
        grant = x_sandbox.issue_tokens(screen_name, "oauth2")[0]
        store_token(
            profile,
            TokenKind.OAUTH2,
            access_token=grant["access_token"],
            refresh_token=grant.get("refresh_token", ""),
            expires_in=grant["expires_in"],
            scopes=grant["scope"],
        )
        profile.sign_in_method = TokenKind.OAUTH2
    profile.save()
    return profile


def build_people(x_sandbox, settings) -> dict[str, Profile]:
    """Eight X profiles: the sandbox's four personas, three formula-like ones, "nobody".

    grace_hopper's current (OAuth 2.0) token is revoked at X; private_pat only has
    OAuth 1.0a; "nobody" signed in with X once but no token is kept. A staff account
    with an empty profile (no X account) is never exported.
    """
    settings.X_API_BASE_URL = settings.X_WEB_BASE_URL = x_sandbox.base_url
    x_sandbox.add_personas(
        [
            {**persona, "created_at": "2024-06-01T00:00:00+00:00", "email": ""}
            for persona in FORMULA_PERSONAS
        ]
    )
    people = {
        name: sign_in(x_sandbox, name, oauth2=name != "private_pat")
        for name in ["ada_lovelace", "grace_hopper", "private_pat", "formula_fred"]
        + [persona["screen_name"] for persona in FORMULA_PERSONAS]
    }
    assert revoke_token(people["grace_hopper"].tokens.get(kind=TokenKind.OAUTH2)).ok
    nobody = get_user_model().objects.create_user(username="nobody").x_profile
    Profile.objects.filter(pk=nobody.pk).update(x_user_id="3000000001", screen_name="nobody")
    people["nobody"] = Profile.objects.get(pk=nobody.pk)
    get_user_model().objects.create_user(username="staffer")
    return people


def secrets_everywhere(x_sandbox) -> list[str]:
    """Every secret the sandbox issued, after checking the site really holds some.

    Without that check an export could not contain them anyway and the hunt for
    leaks below would prove nothing.
    """
    secrets = x_sandbox.secrets()
    held = [
        value
        for token in XToken.objects.all()
        for value in (token.access_token, token.token_secret, token.refresh_token)
        if value
    ]
    assert held
    assert set(held) <= set(secrets)
    return secrets


def xlsx_text(data: bytes) -> str:
    """Every XML part of the workbook, so a secret anywhere in the file would be found."""
    with zipfile.ZipFile(io.BytesIO(data)) as workbook:
        return "".join(workbook.read(name).decode() for name in workbook.namelist())


def xlsx_rows(data: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def run_command(tmp_path, *args: str, name: str = "out") -> bytes:
    target = tmp_path / name
    call_command("export_profiles", "-o", str(target), *args)
    return target.read_bytes()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


@pytest.fixture
def people(x_sandbox, settings):
    return build_people(x_sandbox, settings)


def by_screen_name(rows: list[list[str]]) -> dict[str, list[str]]:
    return {row[1]: row for row in rows[1:]}


def test_columns_have_the_human_names_in_the_issue_order(people, tmp_path):
    rows = csv_rows(run_command(tmp_path, "--format", "csv"))
    assert rows[0] == HEADERS
    ada = by_screen_name(rows)["ada_lovelace"]
    assert ada[HEADERS.index("X user id")] == "1000000001"
    assert ada[HEADERS.index("verified")] == "1"
    assert ada[HEADERS.index("token kind")] == "OAuth 2.0"
    assert ada[HEADERS.index("token status")] == "Active"
    assert ada[HEADERS.index("token expiry")]
    grace = by_screen_name(rows)["grace_hopper"]
    assert grace[HEADERS.index("token status")] == "Revoked"
    pat = by_screen_name(rows)["private_pat"]
    assert pat[HEADERS.index("protected")] == "1"
    assert pat[HEADERS.index("token kind")] == "OAuth 1.0a"
    assert "" not in by_screen_name(rows), "the staff account's empty profile is no row"
    nobody = by_screen_name(rows)["nobody"]
    assert nobody[HEADERS.index("token kind")] == nobody[HEADERS.index("token status")] == ""


def test_streamed_values_equal_the_stock_import_export_values(people):
    """The fast writers render every cell as ProfileResource's widgets do."""
    columns = export_columns()
    stock = ProfileResource().export()
    streamed = csv_rows("".join(iter_csv(stream_rows(x_profiles(), columns), columns)).encode())
    assert streamed[0] == list(stock.headers)
    fred = people["formula_fred"]
    for ours, theirs in zip(streamed[1:], stock, strict=True):
        expected = [
            "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell
            for cell in theirs
        ]
        assert ours == expected
    assert any(row[1] == fred.screen_name for row in streamed)


def test_one_query_and_no_token_column_is_ever_read(people):
    columns = export_columns()
    with CaptureQueriesContext(connection) as queries:
        rows = list(stream_rows(x_profiles(), columns))
    assert len(rows) == len(people)
    assert len(queries) == 1
    sql = queries[0]["sql"]
    for secret_column in SECRET_COLUMNS:
        assert secret_column not in sql


def test_formula_cells_are_neutralised_in_csv(people, tmp_path):
    rows = by_screen_name(csv_rows(run_command(tmp_path, "--format", "csv")))
    description, location, name = (HEADERS.index(h) for h in ("description", "location", "name"))
    assert rows["formula_fred"][description] == '\'=HYPERLINK("http://evil.example/","click me")'
    assert rows["formula_fred"][location] == "'=1+1"
    assert rows["plus_paula"][name] == "'+SUM(A1:A9)"
    assert rows["plus_paula"][location] == "'@evil"
    assert rows["minus_mo"][name] == "'-2+3"
    # A tab or carriage return from X is taken off at the door (accounts.x_values).
    assert rows["minus_mo"][location] == "Tabbed"
    assert rows["at_ali"][name] == "'@HYPERLINK"
    assert rows["at_ali"][location] == "Returned"
    assert rows["ada_lovelace"][name] == "Ada Lovelace"


def test_formula_cells_are_text_not_formulas_in_xlsx(people, tmp_path):
    data = run_command(tmp_path, "--format", "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header = [cell.value for cell in sheet[1]]
    assert header == HEADERS
    cells = {row[1].value: row for row in sheet.iter_rows(min_row=2)}
    fred_description = cells["formula_fred"][header.index("description")]
    assert fred_description.value == '\'=HYPERLINK("http://evil.example/","click me")'
    assert fred_description.data_type == "s"
    assert cells["minus_mo"][header.index("name")].value == "'-2+3"
    assert cells["plus_paula"][header.index("location")].value == "'@evil"
    # Numbers and dates stay typed for the spreadsheet to sort and sum.
    assert cells["ada_lovelace"][header.index("followers")].data_type == "n"
    assert isinstance(cells["ada_lovelace"][header.index("joined X")].value, datetime)


def test_json_keeps_numbers_and_booleans_typed(people, tmp_path):
    records = {r["screen name"]: r for r in json.loads(run_command(tmp_path, "--format", "json"))}
    ada, pat, nobody = records["ada_lovelace"], records["private_pat"], records["nobody"]
    assert ada["followers"] == people["ada_lovelace"].followers_count > 0
    assert type(ada["followers"]) is int and type(ada["following"]) is int
    assert (ada["verified"], ada["protected"], pat["protected"]) == (True, False, True)
    assert ada["X user id"] == "1000000001", "an id stays text: it is no quantity"
    assert isinstance(ada["token expiry"], str) and nobody["token expiry"] is None


def test_json_keeps_the_raw_text(people, tmp_path):
    records = json.loads(run_command(tmp_path, "--format", "json"))
    fred = next(record for record in records if record["screen name"] == "formula_fred")
    assert fred["description"] == '=HYPERLINK("http://evil.example/","click me")'
    assert list(fred) == HEADERS
    assert len(records) == len(people)


@pytest.mark.parametrize("export_format", ["csv", "xlsx", "json"])
def test_no_secret_in_any_export_with_every_field(people, x_sandbox, tmp_path, export_format):
    data = run_command(tmp_path, "--format", export_format)
    text = xlsx_text(data) if export_format == "xlsx" else data.decode("utf-8")
    assert "ada_lovelace" in text
    for secret in secrets_everywhere(x_sandbox):
        assert secret not in text


def test_token_status_filter(people, tmp_path):
    revoked = csv_rows(run_command(tmp_path, "--token-status", "revoked"))
    assert [row[1] for row in revoked[1:]] == ["grace_hopper"]
    without = csv_rows(run_command(tmp_path, "--token-status", "none", name="none"))
    assert [row[1] for row in without[1:]] == ["nobody"]
    active = csv_rows(run_command(tmp_path, "--token-status", "active", name="active"))
    assert "grace_hopper" not in {row[1] for row in active[1:]}
    assert "ada_lovelace" in {row[1] for row in active[1:]}


def test_joined_after_filter(people, tmp_path):
    joined = {p.screen_name: p.x_created_at for p in people.values() if p.x_created_at}
    cutoff = datetime(2024, 6, 1, tzinfo=UTC)
    expected = sorted(name for name, when in joined.items() if when >= cutoff)
    assert expected and len(expected) < len(joined)
    rows = csv_rows(run_command(tmp_path, "--joined-after", "2024-06-01"))
    assert sorted(row[1] for row in rows[1:]) == expected


def test_search_looks_in_screen_name_name_id_and_email(people, tmp_path):
    def found(text: str) -> list[str]:
        rows = csv_rows(run_command(tmp_path, "--search", text, name=f"s{abs(hash(text))}"))
        return sorted(row[1] for row in rows[1:])

    assert found("LOVELACE") == ["ada_lovelace"]
    assert found("1000000004") == ["formula_fred"]
    assert found("fred@example.net") == ["formula_fred"]
    assert found("grace hopper") == ["grace_hopper"]
    assert found("grace lovelace") == []


def test_stdout_gets_only_the_data_and_the_progress_bar_goes_to_a_terminal_stderr(
    people, tmp_path
):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stdout, stderr = io.StringIO(), Terminal()
    call_command("export_profiles", "--format", "csv", "-o", "-", stdout=stdout, stderr=stderr)
    assert stdout.getvalue().encode() == run_command(tmp_path, "--format", "csv")
    assert f"{len(people)}/{len(people)} profiles (100%)" in stderr.getvalue()


def test_field_selection_and_unknown_fields(people, tmp_path):
    rows = csv_rows(run_command(tmp_path, "--fields", "screen_name,followers"))
    assert rows[0] == ["screen name", "followers"]
    with pytest.raises(CommandError, match="Unknown field"):
        run_command(tmp_path, "--fields", "screen_name,access_token", name="bad")
