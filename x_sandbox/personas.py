"""The fictional people who can "sign in" through the sandbox, and how X renders them.

Each built-in persona exists to exercise one thing the site must get right: a
full profile, an empty location with a null url, a protected account, a
description that a spreadsheet would run as a formula, and a profile of hostile
values (NUL, terminal escapes, markup, a right-to-left override, a 10 kB bio, a
`javascript:` URL, counts far beyond 32 bits and below zero). The sandbox sends
every value exactly as given, the way X would pass on whatever it holds. The renderers produce
X's v1.1 user object and v2 user object separately because X shapes them
differently (e.g. v1.1 sends a null url, v2 an empty string and no location).
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

AVATAR_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AAB"
    "AAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFla"
    "AAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAA"
    "AChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1"
    "AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBh"
    "cmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAc"
    "AEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAAoHBwgHBgoICAgLCgoLDhgQDg0NDh0VFhEYIx8l"
    "JCIfIiEmKzcvJik0KSEiMEExNDk7Pj4+JS5ESUM8SDc9Pjv/2wBDAQoLCw4NDhwQEBw7KCIoOzs7Ozs7Ozs7Ozs7"
    "Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozs7Ozv/wAARCAAwADADASIAAhEBAxEB/8QAGgABAAMB"
    "AQEAAAAAAAAAAAAAAAIGBwMBBf/EACYQAAICAgEBCQEBAAAAAAAAAAECAAMEEQUGEhMUITFBUWFxM1L/xAAWAQEB"
    "AQAAAAAAAAAAAAAAAAAFBgH/xAAjEQABAwMDBQEAAAAAAAAAAAABAAIRAwQSBRUxEyFBUaGR/9oADAMBAAIRAxEA"
    "PwDyIkkRrHVEBZmOgB7mWah1GJovD9IYGHjI2ZSuTkMAX7fmqn4AjmOkMDMxnbDpXGyFBK9jyVj8EQ7cqOePj2k9"
    "srYZdp9LOoknRq3ZHBDKdEH2MjEUYk74V4xs7HyGGxVarkfOjucImESIWgwZC2Sq2u+lLamDo4DKw9CDFttdFL3W"
    "sErRSzMfYCZtwvMc7iV93gJbkVA/zNZsVfzXpHNcxzuXX3WeluPUT/MVmtW/d+sB253UxyEfVRbmzp5Ymfn6vl5t"
    "wyc7IvUaFtrOB8bO5wiI8BAhTpMmSkt/SvSyZNa8hyCdqtvOqo+jD/R+vqVbDo8Vm0Y+9d7Yqb/Tqa/Wi1VrWihV"
    "QAKB7AQ3ULh1NoY3kpTTbZtVxe/gIiJWgStVRVGgqjQEOiWIUsUOrDRVhsGSiT8qjjwqP1V0smNW3IcenZrXztqH"
    "ov2Pr6lQmy2IttbVuoZHBDA+4MyDLo8Lm34+991Yyb/DqUGnXDqjSx3IU5qVs2k4PZwV/9k="
)

V1_CREATED_AT = "%a %b %d %H:%M:%S +0000 %Y"
V2_USER_FIELDS = frozenset(
    {
        "created_at",
        "description",
        "location",
        "profile_image_url",
        "protected",
        "public_metrics",
        "url",
        "verified",
    }
)


@dataclass
class Persona:
    """One fictional X account. Field names follow X's v1.1 user object."""

    id: str
    screen_name: str
    name: str
    location: str = ""
    url: str | None = None
    description: str = ""
    protected: bool = False
    verified: bool = False
    followers_count: int = 0
    friends_count: int = 0
    listed_count: int = 0
    statuses_count: int = 0
    created_at: datetime = field(
        default_factory=lambda: datetime(2015, 10, 21, 23, 53, 4, tzinfo=UTC)
    )
    email: str = ""

    def avatar_path(self) -> str:
        return f"/profile_images/{self.id}/avatar_normal.jpg"

    def to_control_json(self, base_url: str) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["created_at"] = iso(self.created_at)
        data["profile_image_url"] = base_url + self.avatar_path()
        return data


FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "screen_name": str,
    "name": str,
    "location": str,
    "url": (str, type(None)),
    "description": str,
    "protected": bool,
    "verified": bool,
    "followers_count": int,
    "friends_count": int,
    "listed_count": int,
    "statuses_count": int,
    "created_at": str,
    "email": str,
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def validate_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Check control-API input against the persona schema; raise ValueError on mistakes.

    The sandbox must not quietly accept a typo'd field name or a wrong type: a test
    that sets `follower_count` would otherwise pass while exercising nothing.
    """
    unknown = sorted(set(data) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown persona fields: {', '.join(unknown)}")
    clean = dict(data)
    for name, value in data.items():
        expected = FIELD_TYPES[name]
        wrong_bool = isinstance(value, bool) and expected is int
        if not isinstance(value, expected) or wrong_bool:
            raise ValueError(f"persona field {name!r} has the wrong type")
    if "created_at" in clean:
        clean["created_at"] = datetime.fromisoformat(clean["created_at"].replace("Z", "+00:00"))
    return clean


RTL_OVERRIDE = "\u202e"
# About 10 kB: X's own limit is 160 characters, but nothing the site keeps may
# depend on X keeping to it.
HOSTILE_DESCRIPTION = (
    "<script>alert('bio')</script>\x00\x1b[31mred alert\x1b[0m\x07 "
    + RTL_OVERRIDE
    + "txet desrever <img src=x onerror=alert(1)> "
    + "\u2066isolated\u2069 \x9b2J "
    + "All work and no play makes Harry a dull boy. " * 225
)


def hostile_persona() -> Persona:
    """Everything a profile from X should never contain, in one person."""
    return Persona(
        id="1000000005",
        screen_name="hostile_harry",
        name="Harry\x00 <b>Hostile</b>\x1b[2J\x07" + RTL_OVERRIDE + "lmth.exe",
        location="\x1b]0;owned\x07<i>Nowhere</i>\x00",
        url="javascript:alert(document.cookie)",
        description=HOSTILE_DESCRIPTION,
        followers_count=2**40,
        friends_count=-7,
        listed_count=-1,
        statuses_count=2**40,
        created_at=datetime(2021, 4, 1, 0, 0, 0, tzinfo=UTC),
        email="harry@example.com",
    )


def builtin_personas() -> list[Persona]:
    """Fresh copies of the fixed personas that other tests rely on by screen name."""
    return [
        Persona(
            id="1000000001",
            screen_name="ada_lovelace",
            name="Ada Lovelace",
            location="London, England",
            url="https://example.com/ada",
            description="Poet of science. Notes on the Analytical Engine.",
            verified=True,
            followers_count=1815,
            friends_count=42,
            listed_count=12,
            statuses_count=1843,
            created_at=datetime(2015, 10, 21, 23, 53, 4, tzinfo=UTC),
            email="ada@example.com",
        ),
        Persona(
            id="1000000002",
            screen_name="grace_hopper",
            name="Grace Hopper",
            location="",
            url=None,
            description="It's easier to ask forgiveness than it is to get permission.",
            followers_count=1906,
            friends_count=7,
            listed_count=3,
            statuses_count=1952,
            created_at=datetime(2016, 12, 9, 8, 30, 0, tzinfo=UTC),
            email="grace@example.com",
        ),
        Persona(
            id="1000000003",
            screen_name="private_pat",
            name="Pat Private",
            location="Somewhere quiet",
            url="https://example.org/pat",
            description="Protected tweets only.",
            protected=True,
            followers_count=3,
            friends_count=5,
            statuses_count=17,
            created_at=datetime(2019, 3, 14, 15, 9, 26, tzinfo=UTC),
            email="pat@example.org",
        ),
        Persona(
            id="1000000004",
            screen_name="formula_fred",
            name="Fred Formula",
            location="=1+1",
            url="https://example.net/fred",
            description='=HYPERLINK("http://evil.example/","click me")',
            followers_count=10,
            friends_count=20,
            listed_count=1,
            statuses_count=30,
            created_at=datetime(2020, 2, 29, 12, 0, 0, tzinfo=UTC),
            email="fred@example.net",
        ),
        hostile_persona(),
    ]


def v1_user(persona: Persona, base_url: str, include_email: bool) -> dict[str, Any]:
    """X's v1.1 user object as `account/verify_credentials` returns it (without `status`)."""
    avatar = base_url + persona.avatar_path()
    user: dict[str, Any] = {
        "id": int(persona.id),
        "id_str": persona.id,
        "name": persona.name,
        "screen_name": persona.screen_name,
        "location": persona.location,
        "description": persona.description,
        "url": persona.url,
        "entities": _v1_entities(persona),
        "protected": persona.protected,
        "followers_count": persona.followers_count,
        "friends_count": persona.friends_count,
        "listed_count": persona.listed_count,
        "created_at": persona.created_at.astimezone(UTC).strftime(V1_CREATED_AT),
        "favourites_count": 0,
        "verified": persona.verified,
        "statuses_count": persona.statuses_count,
        "lang": None,
        "profile_image_url": avatar,
        "profile_image_url_https": avatar,
        "default_profile": True,
        "default_profile_image": False,
    }
    if include_email and persona.email:
        user["email"] = persona.email
    return user


def _v1_entities(persona: Persona) -> dict[str, Any]:
    entities: dict[str, Any] = {"description": {"urls": []}}
    if persona.url:
        url_entity = {
            "url": persona.url,
            "expanded_url": persona.url,
            "indices": [0, len(persona.url)],
        }
        entities["url"] = {"urls": [url_entity]}
    return entities


def v2_user(persona: Persona, base_url: str, fields: set[str]) -> dict[str, Any]:
    """X's v2 user object: `id`, `name`, `username` plus only the fields asked for."""
    user: dict[str, Any] = {
        "id": persona.id,
        "name": persona.name,
        "username": persona.screen_name,
    }
    optional: dict[str, Any] = {
        "created_at": iso(persona.created_at),
        "description": persona.description,
        "profile_image_url": base_url + persona.avatar_path(),
        "protected": persona.protected,
        "public_metrics": {
            "followers_count": persona.followers_count,
            "following_count": persona.friends_count,
            "tweet_count": persona.statuses_count,
            "listed_count": persona.listed_count,
        },
        "url": persona.url or "",
        "verified": persona.verified,
    }
    # X leaves location out entirely when the user has not set one.
    if persona.location:
        optional["location"] = persona.location
    user.update({name: value for name, value in optional.items() if name in fields})
    return user
