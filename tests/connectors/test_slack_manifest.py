"""The Slack app manifest declares what the connector listens to, and no more scopes than it uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from connectors.slack import blocks

MANIFEST = Path(__file__).resolve().parents[2] / "connectors" / "slack_manifest.yaml"


def test_manifest_matches_the_listeners():
    m = yaml.safe_load(MANIFEST.read_text())
    assert [c["command"] for c in m["features"]["slash_commands"]] == ["/docent"]
    assert [(s["type"], s["callback_id"]) for s in m["features"]["shortcuts"]] == [("message", "add_to_docent")]
    assert set(m["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention", "message.channels", "message.groups", "message.im",
    }
    assert m["settings"]["interactivity"]["is_enabled"] is True  # feedback buttons need it
    assert m["settings"]["socket_mode_enabled"] is True
    assert m["features"]["app_home"]["messages_tab_enabled"] is True  # DMs
    assert blocks.FEEDBACK_UP.startswith("docent_feedback")


def test_manifest_scopes_are_minimal():
    m = yaml.safe_load(MANIFEST.read_text())
    assert sorted(m["oauth_config"]["scopes"]["bot"]) == sorted([
        "app_mentions:read", "channels:history", "groups:history", "im:history",
        "chat:write", "commands", "files:read", "users:read",
    ])
