"""Who is acting, and the errors admin operations raise (safe to show to that user)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The person asking for an admin operation, as the connector established it."""

    platform: str  # "slack", "discord", "cli"
    workspace: str
    user_id: str
    is_platform_admin: bool = False  # Slack admin/owner, Discord Manage Server or admin role, CLI operator


class NotAuthorized(Exception):
    def __init__(self, action: str = "do that"):
        super().__init__(f"Sorry — only admins can {action}. Nothing was changed.")


class NotFound(Exception):
    def __init__(self, what: str):
        super().__init__(f"I couldn't find {what}.")


class InvalidCap(ValueError):
    """A daily cap an admin typed that can't be one (not a number, negative, absurd)."""

    def __init__(self, given: str):
        super().__init__(f"“{given}” isn't a daily cap in US dollars — try e.g. 2.50 (0 stops the user's questions). "
                         "Nothing was changed.")
