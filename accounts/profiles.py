"""Keeping a local Profile in step with what X says about the person."""

from typing import Any

from django.utils import timezone

from accounts.models import Profile
from accounts.x_client import XUser


def x_user_fields(x_user: XUser) -> dict[str, Any]:
    """The profile's columns as X describes the person now, stamped as synced.

    Fields X leaves empty are stored empty (a removed bio must disappear here too).
    XUser's values are already normalised to fit these columns (accounts.x_values).
    """
    return {
        "x_user_id": x_user.id,
        "screen_name": x_user.screen_name,
        "name": x_user.name,
        "profile_image_url": x_user.profile_image_url,
        "location": x_user.location,
        "url": x_user.url,
        "description": x_user.description,
        "followers_count": x_user.followers_count,
        "following_count": x_user.following_count,
        "tweet_count": x_user.tweet_count,
        "listed_count": x_user.listed_count,
        "protected": x_user.protected,
        "verified": x_user.verified,
        "x_created_at": x_user.created_at,
        "last_synced_at": timezone.now(),
    }


def apply_x_user(profile: Profile, x_user: XUser) -> Profile:
    """Copy X's view of the person onto the profile and save it."""
    for name, value in x_user_fields(x_user).items():
        setattr(profile, name, value)
    profile.save()
    return profile


def upsert_from_x(user, x_user: XUser, sign_in_method: str) -> Profile:
    """Write X's view of the person onto the user's profile in one statement.

    A sign-in knows everything the profile row needs, so it is written blind with
    INSERT ... ON CONFLICT (user) DO UPDATE instead of read, changed and saved: one
    query instead of three, and the row lock the upsert takes orders simultaneous
    sign-ins of one person like select_for_update did. The returned instance holds
    what was written; created_at is not read back.
    """
    fields = x_user_fields(x_user)
    profile = Profile(user=user, sign_in_method=sign_in_method, **fields)
    Profile.objects.bulk_create(
        [profile],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=[*fields, "sign_in_method", "updated_at"],
    )
    return profile
