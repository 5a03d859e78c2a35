"""One core path: the same questions give the same answers and sources through Discord, through
Slack (an @mention to the real Bolt app), through `Docent.ask` directly, and through the
`docent ask --json` command line.

Each route gets its own data directory holding the same documents, so no route can answer from
another's response cache: equal answers come from the same code, not from a shared memo.
"""

from __future__ import annotations

import json

from typer.testing import CliRunner

from admin.types import Actor
from bot.core import Docent
from bot.types import Question
from connectors.discord.rendering import render_answer
from knowledge.types import Scope
from connectors.slack import blocks
from tests.fakes.discord_api import DiscordHarness, slash_command
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi, mention_event, serve

GUILD = "800000000000000001"
CHANNEL = "810000000000000001"
DOCUMENTS = {
    "leave.md": b"# Annual leave\n\nEmployees receive 25 days of paid annual leave per calendar year. "
    b"Unused annual leave of up to five days carries over to the next year.\n",
    "expenses.md": b"# Expenses\n\nTravel expenses are reimbursed within 30 days when receipts are submitted "
    b"through the finance portal. Meals while travelling are covered up to 60 EUR per day.\n",
    "rocket.md": b"# Rocket launch checklist\n\nThe rocket launch window opens at dawn. The launch checklist "
    b"requires two engineers to sign the fuel inspection.\n",
}
QUESTIONS = [
    "How many days of paid annual leave do employees receive per year?",
    "When are travel expenses reimbursed through the finance portal?",
    "Who must sign the fuel inspection on the rocket launch checklist?",
    "What is the capital of Mongolia?",  # not in the documents: every route must abstain alike
]


def _load(settings, workspace: str = GUILD, channel: str = CHANNEL) -> Docent:
    docent = Docent.from_settings(settings)
    ops = Actor(platform="cli", workspace=workspace, user_id="ops", is_platform_admin=True)
    for name, data in DOCUMENTS.items():
        docent.admin.upload(ops, name, data, Scope(workspace, channel))
    return docent


def _source_keys(sources) -> list[tuple]:
    return [(s["n"], s["doc_id"], s["title"], s["page"], s["section"]) for s in sources]


async def test_discord_direct_and_cli_give_the_same_answers(settings, tmp_path, monkeypatch):
    # 1. Through Discord: the real client and command tree, answers read back from the fake API.
    discord_settings = settings.model_copy(update={"data_dir": tmp_path / "discord"})
    discord_docent = _load(discord_settings)
    harness = await DiscordHarness.start(discord_docent, discord_settings)
    via_discord = []
    try:
        for question in QUESTIONS:
            token = harness.dispatch(slash_command("ask", [{"type": 3, "name": "question", "value": question}],
                                                   guild_id=int(GUILD), channel_id=int(CHANNEL)))
            via_discord.append((await harness.wait_for_final(token)).json["embeds"])
    finally:
        await harness.close()
        discord_docent.close()

    # 2. Directly through the core, as `docent ask` does.
    direct_settings = settings.model_copy(update={"data_dir": tmp_path / "direct"})
    direct_docent = _load(direct_settings)
    try:
        direct = [direct_docent.ask(Question("cli", GUILD, CHANNEL, "someone", q)) for q in QUESTIONS]
    finally:
        direct_docent.close()

    outcomes = [a.outcome for a in direct]
    assert outcomes[:3] == ["answered"] * 3 and outcomes[3] == "abstained"
    for question, answer, embeds in zip(QUESTIONS, direct, via_discord):
        expected = [e.to_dict() for e in render_answer(answer, question=question)]
        for got, want in zip(embeds, expected, strict=True):
            got, want = dict(got), dict(want)
            got.pop("footer", None), want.pop("footer", None)  # latency differs run to run
            got.pop("type", None), want.pop("type", None)
            assert got == want, question

    # 3. Through the command line (`docent ask --json`), in a fresh process-like Docent on the
    #    direct route's data directory.
    from connectors.cli import app

    monkeypatch.setenv("DOCENT_DATA_DIR", str(tmp_path / "direct"))
    monkeypatch.setenv("DOCENT_EMBEDDER", "hash")
    monkeypatch.chdir(tmp_path)  # no stray .env
    runner = CliRunner()
    for question, answer in zip(QUESTIONS, direct):
        result = runner.invoke(app, ["ask", question, "--scope", f"{GUILD}/{CHANNEL}", "--json"])
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout[result.stdout.index("{"):])
        assert data["text"] == answer.text
        assert data["outcome"] == str(answer.outcome)
        assert _source_keys(data["sources"]) == [(s.n, s.doc_id, s.title, s.page, s.section) for s in answer.sources]


SLACK_CHANNEL = "C0GENERAL"


def _strip_feedback(msg_blocks: list[dict]) -> list[dict]:
    # Feedback buttons carry each route's own request id; everything else must match.
    return [b for b in msg_blocks if b.get("type") != "actions"]


def test_slack_and_direct_give_the_same_answers(settings, tmp_path):
    direct_docent = _load(settings.model_copy(update={"data_dir": tmp_path / "direct"}), TEAM_ID, SLACK_CHANNEL)
    try:
        direct = [direct_docent.ask(Question("cli", TEAM_ID, SLACK_CHANNEL, "someone", q)) for q in QUESTIONS]
    finally:
        direct_docent.close()
    assert [str(a.outcome) for a in direct] == ["answered"] * 3 + ["abstained"]

    slack_settings = settings.model_copy(update={"data_dir": tmp_path / "slack"})
    slack_docent = _load(slack_settings, TEAM_ID, SLACK_CHANNEL)
    try:
        with FakeSlackApi() as fake:
            fake.add_user("U0ASKER")
            with serve(slack_docent, slack_settings, fake) as bot:
                for i, (question, answer) in enumerate(zip(QUESTIONS, direct)):
                    ts = f"17000009{i:02d}.000100"
                    status, _, _ = bot.send(mention_event(question, ts=ts, channel=SLACK_CHANNEL))
                    assert status == 200
                    final = bot.answer_for(ts, channel=SLACK_CHANNEL)
                    expected = blocks.answer_messages(answer)[0]
                    assert _strip_feedback(final["blocks"]) == _strip_feedback(list(expected.blocks)), question
    finally:
        slack_docent.close()
