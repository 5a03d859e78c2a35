"""Distributing docent to several Slack workspaces: Bolt's OAuth flow in HTTP mode.

`GET /slack/install` shows Slack's "Add to Slack" link (with a one-time `state` kept in docent's
database), `GET /slack/oauth_redirect` exchanges the code (oauth.v2.access) and stores the
installation; from then on Bolt's `authorize` finds that workspace's bot token for each of its
events, and `SlackClients` uses the same token for everything docent sends there. Installations
and states live in docent's own database (admin/slack_installations.py), so every replica
serves every workspace. Without SLACK_CLIENT_ID / SLACK_CLIENT_SECRET docent runs on the single
SLACK_BOT_TOKEN exactly as before.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from slack_bolt.oauth.oauth_settings import OAuthSettings

from admin.slack_installations import DatabaseInstallationStore, DatabaseOAuthStateStore

# What docent asks each workspace for; the manifest's bot scopes (tests keep them equal).
BOT_SCOPES = (
    "app_mentions:read", "assistant:write", "channels:history", "chat:write", "commands", "files:read",
    "groups:history", "im:history", "users:read",
)
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"


def distributed(settings) -> bool:
    """True when docent is set up for several workspaces (client id and secret both set)."""
    secret = settings.slack_client_secret
    return bool(settings.slack_client_id and secret is not None and secret.get_secret_value())


def authorization_url(api_url: str) -> str:
    """Slack's authorize page next to the Web API docent talks to (GovSlack, test servers)."""
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/oauth/v2/authorize"


def oauth_settings(settings, db) -> OAuthSettings:
    return OAuthSettings(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.slack_redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        authorization_url=authorization_url(settings.slack_api_url),
        installation_store=DatabaseInstallationStore(db, settings.slack_client_id),
        installation_store_bot_only=True,
        state_store=DatabaseOAuthStateStore(db),
    )
