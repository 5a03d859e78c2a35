"""Distribution to several workspaces: Bolt's OAuth flow over HTTP against the fake Web API's
oauth.v2.access, installations in docent's database, each workspace answered with its own bot
token, and uninstall / tokens_revoked handled."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

import pytest
from pydantic import SecretStr
from sqlmodel import select

from admin.models import ChannelSetting, RequestRecord
from admin.slack_installations import SlackBot, SlackInstallation
from admin.types import Actor
from bot.core import Docent
from connectors.slack.app import SlackSetupError, require_credentials
from knowledge.types import Scope
from tests.fakes.slack_api import (
    CLIENT_ID,
    FakeSlackApi,
    FakeTeam,
    event_body,
    mention_event,
    post_event,
    serve,
)

HANGAR = "# Zeppelin hangar\n\nThe zeppelin hangar door code is 4711 and the hangar closes at 22:00.\n"
SECOND = FakeTeam("T0SECOND", "xoxb-second-token", "U0BOT2", "B0BOT2", name="Second")
THIRD = FakeTeam("T0THIRD", "xoxb-third-token", "U0BOT3", "B0BOT3", name="Third")


@pytest.fixture
def docent(settings):
    d = Docent.from_settings(settings)
    yield d
    d.close()


def _get(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read().decode()


def _install(bot, slack, team: FakeTeam, code: str) -> tuple[int, str, str]:
    """Click "Add to Slack" and come back with `code`, like a browser: (status, page, state)."""
    slack.grant_oauth_code(code, team)
    status, headers, page = _get(f"{bot.base_url}/slack/install")
    assert status == 200
    link = re.search(r'<a href="([^"]+)"', page).group(1).replace("&amp;", "&")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
    assert query["client_id"] == [CLIENT_ID] and "chat:write" in query["scope"][0].split(",")
    state = query["state"][0]
    cookie = headers["set-cookie"].split(";", 1)[0]
    status, _, page = _get(f"{bot.base_url}/slack/oauth_redirect?code={code}&state={state}", {"Cookie": cookie})
    return status, page, state


def _ask(bot, team: FakeTeam, ts: str, channel: str = "C0HANGAR") -> None:
    event = mention_event("What is the zeppelin hangar door code?", channel=channel, ts=ts)
    event["team"] = team.id
    assert post_event(bot.url, event_body(event, team_id=team.id))[0] == 200


def _upload(docent, team: str, channel: str = "C0HANGAR") -> None:
    docent.admin.upload(Actor("slack", team, "U0ADMIN", is_platform_admin=True), "hangar.md", HANGAR.encode(),
                        Scope(team, channel))


def test_install_round_trip_then_each_workspace_is_answered_with_its_own_token(docent, settings):
    with FakeSlackApi() as slack, serve(docent, settings, slack, distributed=True) as bot:
        status, page, state = _install(bot, slack, SECOND, "code-2")
        assert status == 200 and "Thank you" in page
        (exchange,) = slack.calls("oauth.v2.access")
        assert exchange.ok and exchange.params["code"] == "code-2"
        with docent.db.session() as session:
            (installed,) = session.exec(select(SlackInstallation)).all()
            (bot_row,) = session.exec(select(SlackBot)).all()
        assert (installed.team_id, installed.client_id, bot_row.team_id) == ("T0SECOND", CLIENT_ID, "T0SECOND")

        # The same state can't install twice (another browser replaying the redirect).
        replay = _get(f"{bot.base_url}/slack/oauth_redirect?code=code-2&state={state}",
                      {"Cookie": f"slack-app-oauth-state={state}"})
        assert replay[0] != 200 and len(slack.calls("oauth.v2.access")) == 1

        _install(bot, slack, THIRD, "code-3")
        _upload(docent, SECOND.id)
        _ask(bot, SECOND, "1700006000.000100")
        second = bot.answer_for("1700006000.000100", channel="C0HANGAR")
        _ask(bot, THIRD, "1700006000.000200")
        third = bot.answer_for("1700006000.000200", channel="C0HANGAR")
        bot.settle()
    assert "4711" in str(second["blocks"]) and "4711" not in str(third["blocks"])  # scopes stay per workspace
    posting = [c for c in slack.calls() if c.method.startswith(("chat.", "conversations."))]
    by_thread = {c.params.get("thread_ts") or c.params.get("ts"): c.team for c in posting}
    assert {c.team for c in posting if c.params.get("thread_ts") == "1700006000.000100"} == {"T0SECOND"}
    assert {c.team for c in posting if c.params.get("thread_ts") == "1700006000.000200"} == {"T0THIRD"}
    assert all(c.authorization in ("Bearer xoxb-second-token", "Bearer xoxb-third-token") for c in posting), by_thread


def test_events_from_a_workspace_without_an_installation_are_not_answered(docent, settings):
    with FakeSlackApi() as slack, serve(docent, settings, slack, distributed=True) as bot:
        _ask(bot, SECOND, "1700006100.000100")  # the fake knows this token, docent has no installation
        bot.settle()
    assert [c for c in slack.calls() if c.method.startswith("chat.")] == []


def test_uninstall_forgets_the_workspaces_tokens_documents_and_settings(docent, settings):
    with FakeSlackApi() as slack, serve(docent, settings, slack, distributed=True) as bot:
        _install(bot, slack, SECOND, "code-2")
        _install(bot, slack, THIRD, "code-3")
        _upload(docent, SECOND.id)
        _upload(docent, THIRD.id)
        docent.admin.set_autoanswer(Actor("slack", SECOND.id, "U0ADMIN", True), "C0HANGAR", True)
        _ask(bot, SECOND, "1700006200.000100")
        bot.answer_for("1700006200.000100", channel="C0HANGAR")
        bot.settle()

        slack.revoke_team(SECOND.id)
        body = event_body({"type": "app_uninstalled", "event_ts": "1700006200.000500"}, team_id=SECOND.id)
        body["authorizations"] = []
        assert post_event(bot.url, body)[0] == 200
        assert post_event(bot.url, body, retry_num=1)[0] == 200  # redelivered: handled once
        bot.settle()

        before = len(slack.calls())
        _ask(bot, SECOND, "1700006200.000900")
        bot.settle()
        assert [c for c in slack.calls()[before:] if c.method.startswith("chat.")] == []  # not answered any more
    with docent.db.session() as session:
        assert {r.team_id for r in session.exec(select(SlackInstallation)).all()} == {"T0THIRD"}
        assert {r.team_id for r in session.exec(select(SlackBot)).all()} == {"T0THIRD"}
        assert session.exec(select(ChannelSetting)).all() == []
        ledger = session.exec(select(RequestRecord).where(RequestRecord.workspace == SECOND.id)).all()
    assert docent.admin.list_documents(Scope(SECOND.id, "C0HANGAR")) == []
    assert [d.name for d in docent.admin.list_documents(Scope(THIRD.id, "C0HANGAR"))] == ["hangar.md"]
    assert len(ledger) == 1  # the usage ledger stays: costs must still add up
    hits = docent.retriever(Scope(SECOND.id, "C0HANGAR")).invoke("zeppelin hangar door code")
    assert hits == []  # its chunks left the store too


def test_revoked_bot_token_is_forgotten_but_the_workspace_keeps_its_documents(docent, settings):
    with FakeSlackApi() as slack, serve(docent, settings, slack, distributed=True) as bot:
        _install(bot, slack, SECOND, "code-2")
        _upload(docent, SECOND.id)
        body = event_body({"type": "tokens_revoked", "tokens": {"oauth": [], "bot": [SECOND.bot_user_id]},
                           "event_ts": "1700006300.000100"}, team_id=SECOND.id)
        assert post_event(bot.url, body)[0] == 200
        bot.settle()
    with docent.db.session() as session:
        assert session.exec(select(SlackBot)).all() == []
    assert [d.name for d in docent.admin.list_documents(Scope(SECOND.id, "C0HANGAR"))] == ["hangar.md"]


def test_http_mode_needs_a_bot_token_or_the_apps_client_id_and_secret(settings):
    http = settings.model_copy(update={"slack_signing_secret": SecretStr("s")})
    with pytest.raises(SlackSetupError, match="SLACK_BOT_TOKEN"):
        require_credentials(http, http=True)
    require_credentials(http.model_copy(update={"slack_client_id": CLIENT_ID,
                                                "slack_client_secret": SecretStr("x")}), http=True)
    require_credentials(http.model_copy(update={"slack_bot_token": SecretStr("xoxb-1")}), http=True)
