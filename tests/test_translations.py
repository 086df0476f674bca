"""English and Spanish: a complete catalogue, a compiled file that matches it, and pages
that speak the reader's language (Accept-Language, or the footer's switcher).

The catalogue is locale/es/LC_MESSAGES/django.po; README "Languages" says how to update it.
"""

import ast
import gettext
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import dateformat, timezone, translation

from accounts.models import Profile, TokenKind, XToken
from admin_ext.models import SignInEvent

LOCALE = Path(settings.BASE_DIR) / "locale"
SPANISH_PO = LOCALE / "es" / "LC_MESSAGES" / "django.po"
SPANISH_MO = SPANISH_PO.with_suffix(".mo")
# Exactly what `make messages` reads (Makefile MESSAGES_IGNORE): our apps and templates.
SOURCES = ("accounts", "admin_ext", "project", "tallies", "templates", "locale", "manage.py")
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\}")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str = ""
    msgctxt: str | None = None
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (obsolete `#~` ones left out), header included."""
    entries: list[Entry] = []
    entry, target = Entry(), None

    def close() -> None:
        nonlocal entry
        if entry.msgstr:
            entries.append(entry)
        entry = Entry()

    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            close()
            target = None
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        else:
            keyword, _, quoted = line.partition(" ")
            if keyword.startswith('"'):
                text = ast.literal_eval(line)
            else:
                target, text = keyword, ast.literal_eval(quoted)
                if target.startswith("msgstr"):
                    entry.msgstr.append("")
            if target == "msgid":
                entry.msgid += text
            elif target == "msgid_plural":
                entry.msgid_plural += text
            elif target == "msgctxt":
                entry.msgctxt = (entry.msgctxt or "") + text
            elif target and target.startswith("msgstr"):
                entry.msgstr[-1] += text
    close()
    return entries


def messages_of(path: Path) -> list[Entry]:
    return [entry for entry in read_po(path) if entry.msgid]


def untranslated(entries: list[Entry]) -> list[str]:
    return [
        entry.msgid
        for entry in entries
        if "fuzzy" in entry.flags or not all(text.strip() for text in entry.msgstr)
    ]


@pytest.fixture(autouse=True)
def english_afterwards():
    """LocaleMiddleware leaves the last request's language active in the test's thread:
    put back the default so later tests (a management command's output) read English."""
    yield
    translation.deactivate()


# The catalogue --------------------------------------------------------------------------


@pytest.mark.skipif(
    not (shutil.which("xgettext") and shutil.which("msgmerge")),
    reason="needs gettext (xgettext, msgmerge); .ci/run installs it",
)
def test_every_string_of_ours_is_in_the_spanish_catalogue_and_translated(tmp_path):
    """Extract the strings again, as `make messages` would, into a copy of the catalogue:
    a new or changed string in our code or templates comes out untranslated or fuzzy."""
    for name in SOURCES:
        source = Path(settings.BASE_DIR) / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "es", "--add-location=file"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    extracted = messages_of(tmp_path / "locale" / "es" / "LC_MESSAGES" / "django.po")

    assert len(extracted) > 300
    assert untranslated(extracted) == []


def test_the_committed_spanish_catalogue_is_complete_and_keeps_every_placeholder():
    entries = messages_of(SPANISH_PO)

    assert untranslated(entries) == []
    broken = []
    for entry in entries:
        wanted = sorted(set(PLACEHOLDER.findall(entry.msgid + entry.msgid_plural)))
        for text in entry.msgstr:
            if sorted(set(PLACEHOLDER.findall(text))) != wanted:
                broken.append((entry.msgid, text))
    assert broken == []
    header = read_po(SPANISH_PO)[0].msgstr[0]
    assert "Language: es" in header and "nplurals=3" in header


def test_the_committed_mo_is_compiled_from_the_committed_po():
    """`make` compiles the .mo when gettext is installed; without it the committed .mo
    is what runs, so it must say exactly what the .po says."""
    with SPANISH_MO.open("rb") as compiled:
        catalogue = gettext.GNUTranslations(compiled)
    entries = messages_of(SPANISH_PO)

    stale = []
    for entry in entries:
        if entry.msgid_plural:
            for n, form in ((1, 0), (1_000_000, 1), (2, 2)):
                if entry.msgctxt is None:
                    shown = catalogue.ngettext(entry.msgid, entry.msgid_plural, n)
                else:
                    shown = catalogue.npgettext(entry.msgctxt, entry.msgid, entry.msgid_plural, n)
                if shown != entry.msgstr[form]:
                    stale.append(entry.msgid)
        else:
            if entry.msgctxt is None:
                shown = catalogue.gettext(entry.msgid)
            else:
                shown = catalogue.pgettext(entry.msgctxt, entry.msgid)
            if shown != entry.msgstr[0]:
                stale.append(entry.msgid)
    assert stale == []
    # Nothing in the .mo that the .po no longer has (the header is the one extra key).
    assert len(catalogue._catalog) == 1 + sum(3 if entry.msgid_plural else 1 for entry in entries)


# Pages --------------------------------------------------------------------------------


def english_of_ours() -> list[str]:
    """Phrases of our English text that must not show on a Spanish page.

    Every literal run of two or more words from a msgid whose Spanish differs; a phrase
    that the Spanish itself quotes (the classic "Sign in with Twitter") is left out.
    """
    entries = messages_of(SPANISH_PO)
    spanish = "\n".join(text for entry in entries for text in entry.msgstr)
    phrases = set()
    for entry in entries:
        if entry.msgstr[0] == entry.msgid:
            continue
        for part in re.split(r"<[^>]+>|%\(\w+\)[sd]|%[sd]|\{\}", entry.msgid):
            part = part.strip(" .,:;·—()…?")
            if len(part.split()) >= 2 and part not in spanish:
                phrases.add(part)
    return sorted(phrases)


def visible_text(html: str) -> str:
    """The page's words as a reader gets them: tags, scripts and styles dropped."""
    html = re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def english_on(text: str) -> list[str]:
    return [phrase for phrase in english_of_ours() if phrase in text]


@pytest.fixture
def person(db):
    user = get_user_model().objects.create_user("ada_lovelace")
    profile, _ = Profile.objects.update_or_create(
        user=user,
        defaults={
            "x_user_id": "1000000001",
            "screen_name": "ada_lovelace",
            "name": "Ada Lovelace",
        },
    )
    XToken.objects.create(profile=profile, kind=TokenKind.OAUTH2, scopes="users.read")
    SignInEvent.objects.create(user=user, method=TokenKind.OAUTH2)
    return user


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_superuser("grace", password="not-used-here-1")


SPANISH_PAGES = {
    "/": "Su cuenta de X, con un inicio de sesión seguro",
    "/login/": "Use su cuenta de X (Twitter): sin contraseñas que recordar.",
    "/account/": "Su perfil tal como lo guardamos",
    "/profile/": "Su conexión con X",
    "/account/delete/": "Escriba <strong>@ada_lovelace</strong> para confirmar",
}


@pytest.mark.django_db
@pytest.mark.parametrize("url", SPANISH_PAGES)
def test_a_person_s_pages_are_in_spanish_when_the_browser_asks_for_it(url, person):
    client = Client(headers={"accept-language": "es-ES,es;q=0.9,en;q=0.5"})
    if url != "/login/":
        client.force_login(person)

    response = client.get(url)

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="es">' in html
    assert SPANISH_PAGES[url] in html
    assert "Idioma" in html  # the switcher
    if url != "/login/":
        assert "Sesión iniciada como" in html
    assert english_on(visible_text(html)) == []


@pytest.mark.django_db
def test_the_staff_dashboard_is_in_spanish_when_the_browser_asks_for_it(staff, person):
    from admin_ext.models import BulkJob, TokenAction

    job = BulkJob.objects.create(action=TokenAction.CHECK, total=3, created_by_label="boss")
    client = Client(headers={"accept-language": "es"})
    client.force_login(staff)

    html = client.get("/admin/").content.decode()

    assert f"Trabajo n.º {job.pk}: comprobar 3 tokens" in html  # a job's name, on its list
    for spanish in ("Salud de los tokens", "Últimos 30 días", "Nuevas esta semana", "Cuentas"):
        assert spanish in html
    assert "Trabajos y auditoría" in html  # the staff site's own model groups
    assert 'action="/i18n/setlang/"' in html  # the switcher, in the admin's footer
    with translation.override("es"):
        for day in (timezone.localdate() - timedelta(days=n) for n in range(30)):
            assert f"<title>{dateformat.format(day, 'D j M')}: " in html  # each bar's day
    assert english_on(visible_text(html)) == []


@pytest.mark.django_db
def test_english_without_accept_language_and_for_languages_we_do_not_have(person):
    for headers in ({}, {"accept-language": "de-DE,de;q=0.9"}):
        client = Client(headers=headers)
        client.force_login(person)

        html = client.get("/account/").content.decode()

        assert '<html lang="en">' in html
        assert "Your profile as stored here" in html and "Su perfil" not in html


@pytest.mark.django_db
def test_a_spanish_error_page(person):
    response = Client(headers={"accept-language": "es"}).get("/no-such-page/")

    assert response.status_code == 404
    assert "Aquí no hay ninguna página" in response.content.decode()


@pytest.mark.django_db
def test_the_switcher_changes_the_language_and_the_choice_sticks(person):
    client = Client(headers={"accept-language": "es"})
    client.force_login(person)
    page = client.get("/account/").content.decode()
    assert 'action="/i18n/setlang/"' in page and 'value="en"' in page

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/account/"})

    assert response.status_code == 302 and response["Location"] == "/account/"
    html = client.get("/account/").content.decode()
    assert '<html lang="en">' in html and "Your profile as stored here" in html
    client.post("/i18n/setlang/", {"language": "es", "next": "/account/"})
    assert "Su perfil tal como lo guardamos" in client.get("/account/").content.decode()


@pytest.mark.django_db
def test_the_switcher_needs_its_csrf_token(person):
    client = Client(enforce_csrf_checks=True, headers={"accept-language": "es"})

    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})

    assert response.status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
