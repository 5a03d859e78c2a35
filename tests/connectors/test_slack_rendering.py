"""Markdown → mrkdwn and Block Kit splitting for Slack answers."""

from __future__ import annotations

import dataclasses
import re

from hypothesis import given, settings as hsettings, strategies as st

from bot.types import Answer, Attachment, Outcome, Source, Usage
from connectors.slack import blocks
from connectors.slack.mrkdwn import split_blocks, split_text, to_mrkdwn, to_mrkdwn_blocks


def test_bold_italic_strike_and_links_convert():
    out = to_mrkdwn("This is **bold**, *it*, ~~gone~~ and [the guide](https://ex.com/a?b=1&c=2).")
    assert out == "This is *bold*, _it_, ~gone~ and <https://ex.com/a?b=1&amp;c=2|the guide>."


def test_citations_stay_plain_text_not_links():
    out = to_mrkdwn("Vacation is 25 days [1]. Carry-over is capped [2][3].")
    assert out == "Vacation is 25 days [1]. Carry-over is capped [2][3]."


def test_control_characters_escaped_everywhere_including_code():
    out = to_mrkdwn("if a < b && c > d\n\n`x<y`\n\n```\nif (a<b) {}\n```")
    assert "a &lt; b &amp;&amp; c &gt; d" in out
    assert "`x&lt;y`" in out
    assert "```\nif (a&lt;b) {}\n```" in out
    assert "<" not in out.replace("&lt;", "")


def test_code_is_not_reformatted():
    out = to_mrkdwn("```python\nx = **kwargs\n[1](http://a)\n```\nand `**not bold**`")
    assert "x = **kwargs\n[1](http://a)" in out
    assert "`**not bold**`" in out


def test_lists_nested_and_ordered():
    out = to_mrkdwn("- one\n- two\n  1. a\n  2. b\n\n3. three\n4. four")
    assert out.splitlines() == ["• one", "• two", "    1. a", "    2. b", "", "3. three", "4. four"]


def test_headings_become_bold_lines_and_unsafe_links_drop_the_url():
    out = to_mrkdwn("## Policy\n\n[click](javascript:alert(1)) and <b>raw</b>")
    assert out.startswith("*Policy*")
    assert "javascript" not in out or "<javascript" not in out
    assert "&lt;b&gt;raw&lt;/b&gt;" in out


def test_link_label_cannot_break_out_of_the_link():
    out = to_mrkdwn("[a|b>c](https://ex.com/x|y)")
    # One link, the URL's | encoded, the label's | replaced.
    assert out.count("<https://") == 1
    assert "%7C" in out
    assert re.fullmatch(r"<https://ex\.com/x%7Cy\|[^|<>]*>", out)


def _source(n: int, url: str | None = None) -> Source:
    return Source(n=n, doc_id=f"d{n}", title=f"Handbook {n}", source=f"h{n}.pdf", page=n + 1,
                  section="Leave › Vacation", snippet="…", url=url)


def test_answer_blocks_have_sources_and_feedback_buttons():
    answer = Answer(text="Twenty-five days [1], see also [2].", sources=(_source(1, "https://ex.com/h1"), _source(2)),
                    outcome=Outcome.answered, usage=Usage(model="m"), request_id="Ev123")
    (message,) = blocks.answer_messages(answer)
    kinds = [b["type"] for b in message.blocks]
    assert kinds[0] == "section" and kinds[-1] == "actions"
    sources = next(b["text"]["text"] for b in message.blocks if b["type"] == "section" and "*Sources*" in b["text"]["text"])
    assert "[1] <https://ex.com/h1|Handbook 1> — p. 2, Leave › Vacation" in sources
    assert "[2] Handbook 2 — p. 3" in sources
    buttons = message.blocks[-1]["elements"]
    assert {b["action_id"] for b in buttons} == {blocks.FEEDBACK_UP, blocks.FEEDBACK_DOWN}
    assert {b["value"] for b in buttons} == {"Ev123"}


def test_refusal_has_no_sources_or_buttons_and_unread_files_are_mentioned():
    answer = Answer(text="Too many questions from you right now — please try again in 30 s.", sources=(_source(1),),
                    outcome=Outcome.rate_limited, usage=Usage(model="none"), request_id="Ev9")
    (message,) = blocks.answer_messages(answer, unread=(Attachment(name="notes.pdf", size=10),))
    assert all(b["type"] != "actions" for b in message.blocks)
    assert "Sources" not in message.text
    note = [b for b in message.blocks if b["type"] == "context"]
    assert note and "notes.pdf" in note[0]["elements"][0]["text"] and "didn't read" in note[0]["elements"][0]["text"]


def test_long_answer_splits_within_limits_without_breaking_code_or_citations():
    para = " ".join(f"Sentence {i} cites [{i % 9 + 1}] and <b>." for i in range(120))
    code = "```\n" + "\n".join(f"line {i} = {i} * 2" for i in range(400)) + "\n```"
    markdown = "\n\n".join([para, code, para, para] * 8)
    answer = Answer(text=markdown, sources=tuple(_source(i) for i in range(1, 10)), outcome=Outcome.answered,
                    usage=Usage(model="m"), request_id="Ev1")
    messages = blocks.answer_messages(answer)
    assert len(messages) > 1
    all_sections = []
    for m in messages:
        assert len(m.blocks) <= blocks.MAX_BLOCKS
        assert len(m.text) <= blocks.MESSAGE_TEXT_LIMIT
        for b in m.blocks:
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= blocks.SECTION_TEXT_LIMIT
                all_sections.append(b["text"]["text"])
    for text in all_sections:
        assert text.count("```") % 2 == 0  # every code piece opens and closes in its section
        assert not re.search(r"\[\d*$|^\d*\]", text)  # no citation cut at an edge
    # Nothing lost: every line of code survives exactly.
    joined = "\n".join(all_sections)
    for i in range(400):
        assert f"line {i} = {i} * 2" in joined
    assert messages[-1].blocks[-1]["type"] == "actions"


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["word", "[3]", "<https://x.io/a|link>", "&amp;", "\n", "a" * 40]), min_size=1, max_size=400),
       st.integers(min_value=60, max_value=400))
def test_split_text_never_cuts_atoms_and_respects_limit(tokens, limit):
    text = " ".join(tokens).strip()
    pieces = split_text(text, limit)
    for piece in pieces:
        assert len(piece) <= limit
        assert piece.count("<") == piece.count(">")
        assert not re.search(r"\[\d?$|^\d?\]|&(?:am?|l|g)?$", piece)
    assert "".join(pieces).replace(" ", "").replace("\n", "") == text.replace(" ", "").replace("\n", "")


def test_split_blocks_keeps_small_blocks_together():
    pieces = split_blocks(to_mrkdwn_blocks("a\n\nb\n\n```\nc\n```"), 3000)
    assert pieces == ["a\n\nb\n\n```\nc\n```"]


def test_progress_is_truncated_to_a_section():
    message = blocks.progress("x " * 5000)
    assert len(message.blocks[0]["text"]["text"]) <= blocks.SECTION_TEXT_LIMIT


def _asking(text: str, files: tuple = ()):
    from connectors.slack.asking import Asking

    return Asking(team="T", channel="C", is_dm=False, user="U", text=text, ts="1.1", thread_ts=None,
                  event_id="Ev", files=files)


def test_learn_is_a_command_only_with_a_file_or_bare():
    from connectors.slack.asking import EVERYWHERE, learn_options

    assert learn_options(_asking("learn")) == ""
    assert EVERYWHERE.search(" " + learn_options(_asking("learn --everywhere")) + " ")
    assert learn_options(_asking("Learn everywhere", files=({"id": "F1"},))) is not None
    assert learn_options(_asking("learn more about our leave policy?")) is None
    assert learn_options(_asking("how do I learn Go?")) is None
    assert learn_options(_asking("learn this please", files=({"id": "F1"},))) is not None


def test_bot_token_is_not_forwarded_on_a_redirect_to_another_host():
    """urllib copies Authorization onto redirects; the Slack file download must not leak it."""
    import threading
    import urllib.request
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from connectors.slack.files import _TokenSafeRedirects

    seen: dict[str, str | None] = {}

    class Target(BaseHTTPRequestHandler):
        def do_GET(self):
            seen["authorization"] = self.headers.get("Authorization")
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)

    class Redirector(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            # Same machine, other host name: not the Slack API host the token belongs to.
            self.send_header("Location", f"http://localhost:{target.server_port}/file")
            self.end_headers()

        def log_message(self, *a):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    for server in (target, origin):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = f"http://127.0.0.1:{origin.server_port}/api/"
        opener = urllib.request.build_opener(_TokenSafeRedirects(api))
        request = urllib.request.Request(f"http://127.0.0.1:{origin.server_port}/f", headers={"Authorization": "Bearer xoxb-secret"})
        with opener.open(request, timeout=5) as response:
            assert response.read() == b"ok"
        assert seen == {"authorization": None}
    finally:
        origin.shutdown()
        target.shutdown()


# --- Slack's AI-app surface: markdown blocks, feedback buttons, related passages, experts -----------
def test_agent_style_answer_is_a_markdown_block_with_sources_and_feedback_buttons_slack_accepts():
    from tests.fakes.slack_api import block_problems

    answer = Answer(text="Twenty-five days [1] — see **Leave** & <@U0BOSS>.", sources=(_source(1, "https://ex.com/h1"),),
                    outcome=Outcome.answered, usage=Usage(model="m"), request_id="Ev7")
    (message,) = blocks.answer_messages(answer, style=blocks.AGENT)
    assert [b["type"] for b in message.blocks] == ["markdown", "section", "context_actions"]
    assert message.blocks[0]["text"] == "Twenty-five days [1] — see **Leave** &amp; &lt;@U0BOSS&gt;."
    buttons = message.blocks[-1]["elements"][0]
    assert (buttons["positive_button"]["value"], buttons["negative_button"]["value"]) == ("up:Ev7", "down:Ev7")
    assert blocks.feedback_vote({"action_id": blocks.FEEDBACK_BUTTONS, "value": "down:Ev7"}) == ("Ev7", False)
    assert blocks.feedback_vote({"action_id": blocks.FEEDBACK_UP, "value": "Ev7"}) == ("Ev7", True)
    assert blocks.feedback_vote({"action_id": blocks.FEEDBACK_BUTTONS, "value": "sideways:Ev7"}) is None
    assert block_problems(list(message.blocks)) == []


def test_abstention_offers_related_passages_never_sources_and_names_the_experts():
    answer = Answer(text="I couldn't find this.", sources=(), outcome=Outcome.abstained, usage=Usage(model="m"),
                    request_id="Ev8", related=(_source(1, "https://ex.com/h1"), _source(2)))
    (message,) = blocks.answer_messages(answer, style=blocks.AGENT, experts="S0HELP")
    kinds = [(b["type"], b.get("block_id")) for b in message.blocks]
    assert kinds == [("markdown", None), ("context", blocks.RELATED_BLOCK), ("section", blocks.EXPERTS_BLOCK),
                     ("context_actions", blocks.FEEDBACK_BLOCK_ID)]
    related = [e["text"] for e in message.blocks[1]["elements"]]
    assert "don't answer it" in related[0]
    assert related[1:] == ["[1] <https://ex.com/h1|Handbook 1> — p. 2, Leave › Vacation", "[2] Handbook 2 — p. 3, Leave › Vacation"]
    assert "<!subteam^S0HELP>" in message.blocks[2]["text"]["text"] and "<!subteam^S0HELP>" in message.text
    # An answered question never names anyone, and related passages are for abstentions only.
    answered = dataclasses.replace(answer, outcome=Outcome.answered, sources=(_source(1),))
    (plain,) = blocks.answer_messages(answered, style=blocks.AGENT, experts="S0HELP")
    assert "subteam" not in str(plain.blocks) and blocks.RELATED_BLOCK not in str(plain.blocks)


def test_only_a_well_formed_reference_becomes_the_expert_mention():
    assert blocks.expert_mention("U0EXPERT") == "<@U0EXPERT>"
    assert blocks.expert_mention("W0GRID") == "<@W0GRID>"
    assert blocks.expert_mention("S0GROUP") == "<!subteam^S0GROUP>"
    for bad in (None, "", "<@U0X>", "here", "!channel", "U0X>", "u0lower", "C0CHANNEL", "U0X|y"):
        assert blocks.expert_mention(bad) is None, bad


def test_long_markdown_answer_keeps_every_message_within_slacks_markdown_budget():
    from tests.fakes.slack_api import MARKDOWN_BUDGET, block_problems

    para = " ".join(f"Sentence {i} cites [{i % 9 + 1}] & <b>." for i in range(150))
    code = "```python\n" + "\n".join(f"line {i} = {i} * 2  # <tag>" for i in range(700)) + "\n```"
    answer = Answer(text="\n\n".join([para, code, para] * 4), sources=tuple(_source(i) for i in range(1, 10)),
                    outcome=Outcome.answered, usage=Usage(model="m"), request_id="Ev2")
    messages = blocks.answer_messages(answer, style=blocks.AGENT)
    assert len(messages) > 2
    markdown = []
    for m in messages:
        assert block_problems(list(m.blocks)) == [], m.blocks
        assert sum(len(b["text"]) for b in m.blocks if b["type"] == "markdown") <= MARKDOWN_BUDGET
        markdown += [b["text"] for b in m.blocks if b["type"] == "markdown"]
    for text in markdown:
        assert text.count("```") % 2 == 0  # every code piece is a complete fence
    joined = "\n".join(markdown)
    for i in range(700):
        assert f"line {i} = {i} * 2  # &lt;tag&gt;" in joined
    assert messages[-1].blocks[-1]["type"] == "context_actions"


def test_downgrade_turns_the_newer_blocks_into_their_classic_twins():
    answer = Answer(text="Twenty-five **days** [1] & <@U0X>.", sources=(_source(1),), outcome=Outcome.answered,
                    usage=Usage(model="m"), request_id="Ev3")
    (agent,) = blocks.answer_messages(answer, style=blocks.AGENT)
    (classic,) = blocks.answer_messages(answer, style=blocks.CLASSIC)
    assert blocks.downgraded_message(agent, blocks.CLASSIC).blocks == classic.blocks
    only_buttons = blocks.downgraded_message(agent, blocks.RenderStyle(markdown=True))
    assert [b["type"] for b in only_buttons.blocks] == ["markdown", "section", "actions"]
