"""project.sessions: Django's database sessions, written as plain SQL, behave as Django's do."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone

from project.sessions import SessionStore

pytestmark = pytest.mark.django_db(transaction=True)


def saved_session(**data) -> SessionStore:
    session = SessionStore()
    session.update(data)
    session.save()
    return session


def test_a_saved_session_loads_in_another_store():
    session = SessionStore()
    session["greeting"] = "hello"
    session.set_expiry(600)
    session.save()

    loaded = SessionStore(session.session_key)
    assert loaded["greeting"] == "hello"
    row = Session.objects.get(session_key=session.session_key)
    assert row.get_decoded()["greeting"] == "hello"
    assert abs((row.expire_date - timezone.now()) - timedelta(seconds=600)) < timedelta(seconds=5)


def test_saving_again_changes_the_same_row():
    session = saved_session(step=1)
    session["step"] = 2
    session.save()

    assert Session.objects.count() == 1
    assert SessionStore(session.session_key)["step"] == 2


def test_an_expired_session_reads_as_empty_and_gets_a_new_key_when_saved():
    session = saved_session(secret="kept")
    old_key = session.session_key
    Session.objects.filter(session_key=old_key).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    expired = SessionStore(old_key)
    assert "secret" not in expired
    expired["fresh"] = True
    expired.save()
    assert expired.session_key != old_key


def test_an_unknown_key_reads_as_empty():
    assert dict(SessionStore("k" * 32).items()) == {}


def test_tampered_data_reads_as_empty():
    session = saved_session(is_staff=False)
    Session.objects.filter(session_key=session.session_key).update(session_data="forged:data")

    assert "is_staff" not in SessionStore(session.session_key)


def test_saving_a_session_deleted_meanwhile_raises_update_error():
    """What SessionMiddleware turns into "session interrupted" instead of resurrecting it."""
    session = saved_session(cart=1)
    SessionStore(session.session_key).delete()

    session["cart"] = 2
    with pytest.raises(UpdateError):
        session.save()
    assert not Session.objects.exists()


def test_creating_with_a_taken_key_raises_create_error_and_keeps_the_other_session():
    first = saved_session(owner="first")
    second = SessionStore(first.session_key)
    second._session_cache = {"owner": "second"}

    with pytest.raises(CreateError):
        second.save(must_create=True)
    assert SessionStore(first.session_key)["owner"] == "first"


def test_a_failed_create_inside_a_transaction_leaves_the_transaction_usable():
    first = SessionStore()
    first.save()
    with transaction.atomic():
        clash = SessionStore(first.session_key)
        with pytest.raises(CreateError):
            clash.save(must_create=True)
        other = SessionStore()
        other["after"] = "clash"
        other.save()
    assert SessionStore(other.session_key)["after"] == "clash"


def test_cycle_key_moves_the_data_and_deletes_the_old_row():
    session = saved_session(user="42")
    old_key = session.session_key

    session.cycle_key()

    assert session.session_key != old_key
    assert not Session.objects.filter(session_key=old_key).exists()
    assert SessionStore(session.session_key)["user"] == "42"


def test_flush_deletes_the_row():
    session = saved_session(user="42")
    key = session.session_key

    session.flush()

    assert not Session.objects.filter(session_key=key).exists()
    assert session.session_key is None
