"""Answers as Discord embeds: limits respected, citations never cut, sources listed and linked."""

from __future__ import annotations

import re

import discord
from hypothesis import given, settings as hsettings, strategies as st

from bot.types import Answer, Outcome, Source, Usage
from connectors.discord.rendering import (
    DESCRIPTION_LIMIT,
    RELATED_FIELD,
    EMBEDS_PER_MESSAGE,
    FIELD_VALUE_LIMIT,
    FIELDS_PER_EMBED,
    MESSAGE_EMBED_TOTAL,
    group_into_messages,
    render_answer,
    source_line,
    split_text,
)

CITATION = re.compile(r"\[\d+\]")


def _answer(text: str, n_sources: int = 2, **kw) -> Answer:
    sources = tuple(
        Source(n=i, doc_id=f"d{i}", title=f"Handbook {i}", source=f"h{i}.md", page=i, section="Leave", snippet="…",
               url=f"https://example.com/{i}" if i % 2 else None)
        for i in range(1, n_sources + 1)
    )
    return Answer(text=text, sources=sources, outcome=Outcome.answered,
                  usage=Usage(model="claude-haiku-4-5", latency_ms=1530.0), request_id="r1", **kw)


def _citations(text: str) -> list[str]:
    return CITATION.findall(text)


# --- split_text --------------------------------------------------------------------------------

def test_short_text_is_one_piece():
    assert split_text("Leave is 25 days [1].", 100) == ["Leave is 25 days [1]."]


def test_split_prefers_paragraphs_and_keeps_every_word():
    text = ("First paragraph about leave [1]. " * 20).strip() + "\n\n" + ("Second about travel [2]. " * 20).strip()
    pieces = split_text(text, 800)
    assert all(len(p) <= 800 for p in pieces)
    assert pieces[0].endswith("[1].")
    assert " ".join(pieces).split() == text.split()


def test_split_never_cuts_inside_a_citation_even_without_spaces():
    # No whitespace at all: only a hard cut is possible, and it must move back before the [12].
    text = "x" * 95 + "[12]" + "y" * 50
    pieces = split_text(text, 97)
    assert all(len(p) <= 97 for p in pieces)
    assert any("[12]" in p for p in pieces)
    assert "".join(pieces) == text


def test_split_keeps_markdown_links_whole():
    link = "[Handbook](https://example.com/a/very/long/path)"
    text = "word " * 30 + link + " tail"
    for limit in range(160, 190):
        pieces = split_text(text, limit)
        assert sum(p.count(link) for p in pieces) == 1, limit


@hsettings(max_examples=150, deadline=None)
@given(
    words=st.lists(
        st.one_of(
            st.from_regex(r"[A-Za-z]{1,12}[.,]?", fullmatch=True),
            st.integers(1, 40).map(lambda n: f"[{n}]"),
            st.just("\n\n"),
        ),
        min_size=1,
        max_size=300,
    ),
    limit=st.integers(40, 400),
)
def test_split_invariants(words, limit):
    text = " ".join(words).strip()
    if not text:
        return
    pieces = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    # Nothing lost or invented, and every citation survives whole.
    assert " ".join(pieces).split() == text.split()
    assert sum(len(_citations(p)) for p in pieces) == len(_citations(text))


# --- render_answer -----------------------------------------------------------------------------

def test_answer_embed_has_text_sources_and_footer():
    embeds = render_answer(_answer("Employees get 25 days [1], carried over per [2]."), question="How much leave?")
    assert len(embeds) == 1
    e = embeds[0]
    assert e.title == "How much leave?"
    assert e.description == "Employees get 25 days [1], carried over per [2]."
    assert e.fields[0].name == "Sources"
    assert "`[1]` [Handbook 1 (p. 1, Leave)](https://example.com/1)" in e.fields[0].value
    assert "`[2]` Handbook 2 (p. 2, Leave)" in e.fields[0].value
    assert e.footer.text == "1.5 s · claude-haiku-4-5"


def test_source_label_brackets_cannot_break_the_link():
    s = Source(n=3, doc_id="d", title="Policy [draft]", source="p.md", page=None, section="", snippet="",
               url="https://example.com/p")
    assert source_line(s) == "`[3]` [Policy (draft)](https://example.com/p)"


def test_long_answer_and_many_sources_stay_within_every_limit():
    sentence = "Travel is reimbursed within thirty days when receipts are attached [3]. "
    answer = _answer(sentence * 400, n_sources=60)  # ~29k characters, 60 sources
    embeds = render_answer(answer, question="q" * 400)
    for e in embeds:
        assert len(e.description or "") <= DESCRIPTION_LIMIT
        assert len(e.title or "") <= 256
        assert len(e.fields) <= FIELDS_PER_EMBED
        assert all(len(f.value) <= FIELD_VALUE_LIMIT for f in e.fields)
        assert len(e) <= MESSAGE_EMBED_TOTAL
    text = " ".join(e.description for e in embeds if e.description)
    assert text.split() == answer.text.split()
    assert text.count("[3]") == 400
    listed = "\n".join(f.value for e in embeds for f in e.fields)
    assert [int(n) for n in re.findall(r"`\[(\d+)\]`", listed)] == list(range(1, 61))
    messages = group_into_messages(embeds)
    assert len(messages) > 1
    for batch in messages:
        assert len(batch) <= EMBEDS_PER_MESSAGE
        assert sum(len(e) for e in batch) <= MESSAGE_EMBED_TOTAL
    assert [e for batch in messages for e in batch] == embeds
    assert embeds[-1].footer.text and all(e.footer.text is None for e in embeds[:-1])


def test_notices_are_shown_above_the_answer():
    embeds = render_answer(_answer("Short [1].", notices=("Claude was unavailable; this is an extractive answer.",)))
    assert embeds[0].description.startswith("-# Claude was unavailable")
    assert embeds[0].description.endswith("Short [1].")


def test_abstention_has_no_sources_field():
    a = Answer(text="I couldn't find this in the documents.", sources=(), outcome=Outcome.abstained,
               usage=Usage(model="none"))
    (e,) = render_answer(a)
    assert e.fields == []
    assert e.colour == discord.Colour.light_grey()


def test_abstention_offers_related_passages_never_as_numbered_sources():
    related = (
        Source(n=1, doc_id="d1", title="Travel policy", source="t.md", page=4, section="Per diem", snippet="…",
               url="https://example.com/travel"),
        Source(n=2, doc_id="d2", title="Expenses [v2]", source="e.md", page=None, section="", snippet="…"),
    )
    a = Answer(text="I couldn't find this in the documents.", sources=(), outcome=Outcome.abstained,
               usage=Usage(model="none"), related=related)
    (e,) = render_answer(a, question="What is the per diem in Denver?")
    assert [f.name for f in e.fields] == [RELATED_FIELD]
    assert e.fields[0].value == "• [Travel policy (p. 4, Per diem)](https://example.com/travel)\n• Expenses (v2)"
    assert "[1]" not in e.fields[0].value and e.description == a.text
    # An answer carries its sources only: related passages are for abstentions.
    answered = _answer("Employees get 25 days [1].", n_sources=1)
    (e,) = render_answer(Answer(**{**answered.__dict__, "related": related}))
    assert [f.name for f in e.fields] == ["Sources"]


def test_gaps_report_embeds_escape_questions_and_stay_within_limits():
    from datetime import date, datetime, timezone

    from admin.gaps import GapCluster, GapsReport
    from connectors.discord.rendering import MAX_GAP_GROUPS, render_gaps

    def cluster(i: int) -> GapCluster:
        return GapCluster(representative=f"**Where** is @everyone's key #{i}? " + "word " * 40, requests=40 - i,
                          abstained=40 - i, unhelpful=0, questions=(f"q{i}",), channels=(("C1", 40 - i),),
                          askers=("7",), comments=(), last_asked=datetime(2026, 1, 1, tzinfo=timezone.utc))

    report = GapsReport(workspace="G", channel=None, days=30, since=date(2026, 1, 1), until=date(2026, 1, 30),
                        requests=800, clusters=tuple(cluster(i) for i in range(40)))
    embeds = render_gaps(report)
    assert len(embeds) > 1 and embeds[0].title == "Coverage gaps"
    assert all(len(e.description) <= DESCRIPTION_LIMIT for e in embeds)
    text = "\n".join(e.description for e in embeds)
    assert "\\*\\*Where\\*\\*" in text and "@\u200beveryone" in text  # shown, never formatted or pinged
    assert text.count("×** “") == MAX_GAP_GROUPS and "… and 15 more group(s)" in text


# --- streaming edits -----------------------------------------------------------------------------

async def test_streaming_edits_are_throttled_ordered_and_finished_before_the_answer():
    import asyncio

    from connectors.discord.commands import StreamingEdits

    now = [0.0]
    edits: list[str] = []

    async def edit(text: str) -> None:
        await asyncio.sleep(0)
        edits.append(text)

    streaming = StreamingEdits(asyncio.get_running_loop(), edit, clock=lambda: now[0])

    def model_thread() -> None:  # the core calls on_delta from a worker thread
        text = ""
        for i in range(25):  # 25 deltas, 0.25 s apart on the fake clock: 6.25 seconds of streaming
            text += f"word{i} "
            streaming.on_delta(text)
            now[0] += 0.25

    await asyncio.to_thread(model_thread)
    await streaming.finish()
    streaming.on_delta("too late")  # after finish nothing more is edited
    await asyncio.sleep(0.05)

    assert len(edits) == 7  # one per fake second: t = 0, 1, …, 6
    assert edits == sorted(edits, key=len)  # always growing: edits arrive in order
    assert edits[0] == "word0 "
    assert "too late" not in edits


def test_dm_sees_server_documents_only_as_a_member_of_that_server():
    from types import SimpleNamespace

    from bot.settings import Settings
    from connectors.discord.context import dm_workspace

    settings = Settings(discord_dm_server_docs=True, discord_dm_guild_id=42, _env_file=None)
    members = {7}
    guild = SimpleNamespace(get_member=lambda uid: object() if uid in members else None)
    client = SimpleNamespace(get_guild=lambda gid: guild if gid == 42 else None)
    assert dm_workspace(7, settings, client) == "42"
    assert dm_workspace(8, settings, client) == "discord-dm:8"  # shares some other server only
    assert dm_workspace(7, settings, None) == "discord-dm:7"  # can't check: fail closed
    off = settings.model_copy(update={"discord_dm_server_docs": False})
    assert dm_workspace(7, off, client) == "discord-dm:7"
