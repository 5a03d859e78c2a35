"""The Slack app manifest declares what the connector listens to, and no more scopes than it uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from connectors.slack import blocks, oauth
from connectors.slack.app import ADD_TO_DOCENT, ASK_DOCENT

MANIFEST = Path(__file__).resolve().parents[2] / "connectors" / "slack_manifest.yaml"


def test_manifest_matches_the_listeners():
    m = yaml.safe_load(MANIFEST.read_text())
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/docent"]
    assert [(s["type"], s["callback_id"]) for s in m["features"]["shortcuts"]] == [
        ("message", ADD_TO_DOCENT), ("message", ASK_DOCENT),
    ]
    assert set(m["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.channels", "message.groups", "message.im",
        "assistant_thread_started", "assistant_thread_context_changed", "app_uninstalled", "tokens_revoked",
    }
    assert m["features"]["assistant_view"]["assistant_description"]
    assert m["settings"]["interactivity"]["is_enabled"] is True  # feedback and share buttons need it
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["features"]["app_home"]["messages_tab_enabled"] is True  # DMs
    assert blocks.FEEDBACK_UP.startswith("docent_feedback")


def test_manifest_scopes_are_minimal_and_what_the_install_flow_asks_for():
    m = yaml.safe_load(MANIFEST.read_text())
    assert sorted(m["oauth_config"]["scopes"]["bot"]) == sorted([
        "app_mentions:read", "assistant:write", "channels:history", "groups:history", "im:history",
        "chat:write", "commands", "files:read", "users:read",
    ])
    assert sorted(oauth.BOT_SCOPES) == sorted(m["oauth_config"]["scopes"]["bot"])
