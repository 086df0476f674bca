"""Keeping a local Profile in step with what X says about the person."""

from django.utils import timezone

from accounts.models import Profile
from accounts.x_client import XUser

# The model's limits; X's own are smaller, but a change at X must not break saving.
_MAX_LENGTHS = {
    field.name: field.max_length
    for field in Profile._meta.get_fields()
    if getattr(field, "max_length", None)
}


def _fit(field: str, value: str) -> str:
    limit = _MAX_LENGTHS.get(field)
    return value[:limit] if limit else value


def apply_x_user(profile: Profile, x_user: XUser) -> Profile:
    """Copy X's view of the person onto the profile and save it.

    Fields X leaves empty are stored empty (a removed bio must disappear here too).
    """
    profile.x_user_id = x_user.id
    profile.screen_name = _fit("screen_name", x_user.screen_name)
    profile.name = _fit("name", x_user.name)
    profile.profile_image_url = _fit("profile_image_url", x_user.profile_image_url)
    profile.location = _fit("location", x_user.location)
    profile.url = _fit("url", x_user.url)
    profile.description = _fit("description", x_user.description)
    profile.followers_count = x_user.followers_count
    profile.following_count = x_user.following_count
    profile.tweet_count = x_user.tweet_count
    profile.listed_count = x_user.listed_count
    profile.protected = x_user.protected
    profile.verified = x_user.verified
    profile.x_created_at = x_user.created_at
    profile.last_synced_at = timezone.now()
    profile.save()
    return profile
