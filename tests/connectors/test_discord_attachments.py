"""/docs upload when an attachment's declared size lies: the real discord.py client and command
tree against the loopback fake Discord API, which serves the download."""

from __future__ import annotations

import pytest

from bot.core import Docent
from knowledge.types import Scope
from tests.connectors.test_discord_commands import CHANNEL, GUILD, ephemeral_reply
from tests.fakes.discord_api import DiscordHarness, attachment, slash_command

MB = 1024 * 1024


@pytest.fixture
def docent(settings):
    docent = Docent.from_settings(settings.model_copy(update={"max_file_mb": 1.0}))
    yield docent
    docent.close()


@pytest.fixture
async def bot(docent):
    harness = await DiscordHarness.start(docent, docent.settings)
    yield harness
    await harness.close()


def _upload(bot: DiscordHarness, att: dict) -> str:
    options = [{"type": 11, "name": "file", "value": att["id"]}]
    return bot.dispatch(slash_command("docs", options, subcommand="upload", attachments={att["id"]: att}, admin=True))


async def test_a_download_bigger_than_its_declared_size_is_stopped_at_the_limit(bot, docent):
    # Discord says 200 bytes; the download is 200 MB, chunked, so only reading tells.
    att = attachment(bot.api, "notes.txt", b"", size=200, stream_bytes=200 * MB)
    reply = await ephemeral_reply(bot, _upload(bot, att))
    assert "notes.txt" in reply and "over the limit of 1.0 MB" in reply and "nothing was stored" in reply
    path = att["url"].split("/files/", 1)[1]
    assert bot.api.downloads == [path]
    assert bot.api.bytes_sent[path] < 32 * MB  # the reader hung up soon after 1 MB, not at 200
    assert docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL))) == []


async def test_a_download_whose_length_is_over_the_limit_is_refused_before_reading_it(bot, docent):
    att = attachment(bot.api, "notes.md", b"# Notes\n\n" + b"word " * (MB // 2), size=300)  # 2.5 MB really
    reply = await ephemeral_reply(bot, _upload(bot, att))
    assert "over the limit of 1.0 MB" in reply and "nothing was stored" in reply
    assert docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL))) == []


async def test_an_attachment_within_the_limit_streams_in_whole_and_is_learned(bot, docent):
    att = attachment(bot.api, "rocket.md", b"", stream_bytes=200_000)  # chunked, under the limit
    att["size"] = 200_000
    reply = await ephemeral_reply(bot, _upload(bot, att))
    assert "nothing was stored" not in reply
    (record,) = docent.admin.list_documents(Scope(str(GUILD), str(CHANNEL)))
    assert record.name == "rocket.md"
    assert bot.api.bytes_sent[att["url"].split("/files/", 1)[1]] == 200_000
