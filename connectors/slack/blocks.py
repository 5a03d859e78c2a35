"""Block Kit for docent's Slack messages: the placeholder, streamed progress, the answer with its
Sources (or, on an abstention, its related passages and who to ask instead) and 👍/👎, the
private answer's "Share in channel" button, and plain notices — all within Slack's size limits.

Two renderings of an answer (`RenderStyle`): Slack's AI-app surface — the text as a `markdown`
block, 👍/👎 as `feedback_buttons` in a `context_actions` block — and the classic one — mrkdwn
sections and plain buttons — which every workspace falls back to when Slack refuses the other.
Whatever the style, sources, notes and titles are docent's own mrkdwn lines with `verbatim`
text, and the only mention docent ever writes is an expert's, built by `expert_mention` from a
channel setting — never from document or model text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.types import Answer, Attachment, Outcome, Source
from connectors.slack.markdown import markdown_pieces
from connectors.slack.mrkdwn import document_text, escape, split_blocks, split_text, to_mrkdwn, to_mrkdwn_blocks

# Slack's published limits.
SECTION_TEXT_LIMIT = 3000
CONTEXT_TEXT_LIMIT = 2000
MAX_BLOCKS = 50
MESSAGE_TEXT_LIMIT = 40_000
MARKDOWN_BUDGET = 12_000  # all `markdown` blocks of one message together
# A little under the limits: room for the "…" of progress and for Slack counting differently.
SAFE_SECTION = SECTION_TEXT_LIMIT - 20
SAFE_MARKDOWN = MARKDOWN_BUDGET - 500

PLACEHOLDER_TEXT = "Looking through the documents…"
FEEDBACK_BLOCK_ID = "docent_feedback"
SOURCES_BLOCK = "docent_sources"
FEEDBACK_UP = "docent_feedback_up"
FEEDBACK_DOWN = "docent_feedback_down"
FEEDBACK_BUTTONS = "docent_feedback_buttons"  # Slack's feedback_buttons: the value says which
FEEDBACK_POSITIVE, FEEDBACK_NEGATIVE = "up:", "down:"
SHARE = "docent_share"
SHARE_BLOCK_ID = "docent_share"
RELATED_BLOCK = "docent_related"
EXPERTS_BLOCK = "docent_experts"
# What Slack accepts as a reference to a person (U…, or W… on Enterprise Grid) or a user group (S…).
SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,}")
SLACK_USER_GROUP = re.compile(r"S[A-Z0-9]{2,}")


@dataclass(frozen=True)
class RenderStyle:
    """Which of Slack's newer Block Kit pieces an answer may use (see the module docstring)."""

    markdown: bool = False  # the answer text as a `markdown` block, else mrkdwn sections
    feedback_buttons: bool = False  # 👍/👎 as feedback_buttons in context_actions, else buttons


CLASSIC = RenderStyle()
AGENT = RenderStyle(markdown=True, feedback_buttons=True)


@dataclass(frozen=True)
class SlackMessage:
    """What chat.postMessage / chat.update take: fallback text plus blocks."""

    text: str
    blocks: tuple[dict, ...] = field(default=())

    def as_kwargs(self) -> dict:
        # parse=none, link_names off: Slack turns nothing in the text into a link or a mention;
        # only the explicit <url|text> and <@U…> docent writes itself are rendered as such.
        return {"text": self.text, "blocks": list(self.blocks), "parse": "none", "link_names": False}


def _mrkdwn(text: str) -> dict:
    # verbatim: no auto-linked URLs or channel names and no parsed mentions in the text —
    # document and model text stay text (explicit <url|text> links still render).
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> dict:
    return {"type": "section", "text": _mrkdwn(text)}


def context(text: str) -> dict:
    return {"type": "context", "elements": [_mrkdwn(text[:CONTEXT_TEXT_LIMIT])]}


def placeholder() -> SlackMessage:
    return SlackMessage(PLACEHOLDER_TEXT, (context(f":eyes: {PLACEHOLDER_TEXT}"),))


def progress(partial_markdown: str) -> SlackMessage:
    """A streamed partial answer: the newest text (its tail if too long) and a 'still writing' note."""
    text = to_mrkdwn(partial_markdown)
    if len(text) > SAFE_SECTION:
        text = "…" + text[-(SAFE_SECTION - 1) :]
    return SlackMessage(text or PLACEHOLDER_TEXT, (section(text or "…"), context("_writing…_")))


def notice(text: str) -> SlackMessage:
    """A short plain message (refusals, admin replies, errors), escaped and split if long."""
    parts = split_text(escape(text), SAFE_SECTION) or [""]
    return SlackMessage(escape(text)[:MESSAGE_TEXT_LIMIT], tuple(section(p) for p in parts[:MAX_BLOCKS]))


def mrkdwn_notice(text: str) -> SlackMessage:
    """Like `notice` for text already written in mrkdwn by docent itself (not user/model text)."""
    parts = split_text(text, SAFE_SECTION) or [""]
    return SlackMessage(text[:MESSAGE_TEXT_LIMIT], tuple(section(p) for p in parts[:MAX_BLOCKS]))


def source_line(source: Source) -> str:
    where = []
    if source.page is not None:
        where.append(f"p. {source.page}")
    if source.section:
        where.append(document_text(source.section))
    title = document_text(source.title or source.source).replace("|", "¦")
    if source.url and source.url.lower().startswith(("http://", "https://")):
        title = f"<{source.url.replace('&', '&amp;').replace('|', '%7C').replace('>', '%3E')}|{title}>"
    return f"[{source.n}] {title}" + (f" — {', '.join(where)}" if where else "")


def sources_blocks(sources: tuple[Source, ...]) -> list[dict]:
    if not sources:
        return []
    lines = "\n".join(source_line(s) for s in sources)
    return [
        {**section(part), "block_id": f"{SOURCES_BLOCK}_{i}" if i else SOURCES_BLOCK}
        for i, part in enumerate(split_blocks_text("*Sources*\n" + lines))
    ]


def split_blocks_text(text: str) -> list[str]:
    return split_text(text, SAFE_SECTION)


def feedback_block(request_id: str, style: RenderStyle = CLASSIC) -> dict:
    if style.feedback_buttons:
        # Slack's own 👍/👎 under an AI answer; a click sends the clicked button's value.
        return {
            "type": "context_actions",
            "block_id": FEEDBACK_BLOCK_ID,
            "elements": [{
                "type": "feedback_buttons",
                "action_id": FEEDBACK_BUTTONS,
                "positive_button": {"text": {"type": "plain_text", "text": "👍"},
                                    "accessibility_label": "This answer helped",
                                    "value": FEEDBACK_POSITIVE + request_id},
                "negative_button": {"text": {"type": "plain_text", "text": "👎"},
                                    "accessibility_label": "This answer didn't help",
                                    "value": FEEDBACK_NEGATIVE + request_id},
            }],
        }
    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [
            {
                "type": "button",
                "action_id": FEEDBACK_UP,
                "text": {"type": "plain_text", "text": "👍 Helpful", "emoji": True},
                "value": request_id,
            },
            {
                "type": "button",
                "action_id": FEEDBACK_DOWN,
                "text": {"type": "plain_text", "text": "👎 Not helpful", "emoji": True},
                "value": request_id,
            },
        ],
    }


def feedback_vote(action: dict) -> tuple[str, bool] | None:
    """(request id, helpful) of a click on either kind of 👍/👎, or None for anything else."""
    action_id, value = action.get("action_id"), action.get("value") or ""
    if action_id in (FEEDBACK_UP, FEEDBACK_DOWN):
        return (value, action_id == FEEDBACK_UP) if value else None
    if action_id == FEEDBACK_BUTTONS:
        for prefix, helpful in ((FEEDBACK_POSITIVE, True), (FEEDBACK_NEGATIVE, False)):
            if value.startswith(prefix) and len(value) > len(prefix):
                return value[len(prefix):], helpful
    return None


def share_block(key: str) -> dict:
    return {
        "type": "actions",
        "block_id": SHARE_BLOCK_ID,
        "elements": [{
            "type": "button",
            "action_id": SHARE,
            "text": {"type": "plain_text", "text": "Share in channel", "emoji": True},
            "value": key,
        }],
    }


def expert_mention(reference: str | None) -> str | None:
    """The one mention docent writes: a channel's expert (`<@U…>`) or expert group
    (`<!subteam^S…>`), from docent's own setting; None for anything that isn't exactly one."""
    if not reference:
        return None
    if SLACK_USER.fullmatch(reference):
        return f"<@{reference}>"
    if SLACK_USER_GROUP.fullmatch(reference):
        return f"<!subteam^{reference}>"
    return None


def experts_block(reference: str | None) -> dict | None:
    mention = expert_mention(reference)
    if mention is None:
        return None
    return {**section(f":raising_hand: Try asking {mention} — they may know."), "block_id": EXPERTS_BLOCK}


def related_blocks(related: tuple[Source, ...]) -> list[dict]:
    """An abstention's closest passages, offered for reference and never as support."""
    if not related:
        return []
    lines = [source_line(s) for s in related[: CONTEXT_ELEMENTS - 1]]
    return [{
        "type": "context",
        "block_id": RELATED_BLOCK,
        "elements": [_mrkdwn("*Related* — these passages are close but don't answer it:")]
        + [_mrkdwn(line[:CONTEXT_TEXT_LIMIT]) for line in lines],
    }]


CONTEXT_ELEMENTS = 10


def unread_attachments_note(attachments: tuple[Attachment, ...]) -> str:
    names = ", ".join(document_text(a.name) for a in attachments)
    return (
        f":paperclip: I didn't read the attached file{'s' if len(attachments) > 1 else ''} ({names}): "
        "I only answer from documents an admin added. An admin can add it by mentioning me with `learn`."
    )


def _markdown_block(text: str) -> dict:
    return {"type": "markdown", "text": text}


def body_blocks(answer: Answer, style: RenderStyle = CLASSIC) -> list[dict]:
    """The answer's own text: `markdown` blocks or mrkdwn sections."""
    if answer.outcome not in (Outcome.answered, Outcome.abstained):
        # Refusals and errors are docent's own friendly sentences: show them as written.
        return [section(text) for text in split_text(escape(answer.text), SAFE_SECTION)] or [section("…")]
    if style.markdown:
        return [_markdown_block(text) for text in markdown_pieces(answer.text, SAFE_MARKDOWN)] or [section("…")]
    return [section(text) for text in split_blocks(to_mrkdwn_blocks(answer.text), SAFE_SECTION)] or [section("…")]


def tail_blocks(answer: Answer, *, unread: tuple[Attachment, ...] = (), style: RenderStyle = CLASSIC,
                experts: str | None = None, share_key: str | None = None) -> list[dict]:
    """What follows the answer's text: sources (answers) or related passages and the channel's
    experts (abstentions), notes, then 👍/👎 and the share button."""
    tail: list[dict] = []
    if answer.outcome is Outcome.answered:
        tail.extend(sources_blocks(answer.sources))
    elif answer.outcome is Outcome.abstained:
        tail.extend(related_blocks(answer.related))
        expert = experts_block(experts)
        if expert is not None:
            tail.append(expert)
    notes = [escape(n) for n in answer.notices]
    if unread:
        notes.append(unread_attachments_note(unread))
    tail.extend(context(n) for n in notes)
    if answer.request_id and answer.outcome in (Outcome.answered, Outcome.abstained):
        tail.append(feedback_block(answer.request_id, style))
    if share_key:
        tail.append(share_block(share_key))
    return tail


def answer_messages(answer: Answer, *, unread: tuple[Attachment, ...] = (), style: RenderStyle = CLASSIC,
                    experts: str | None = None, share_key: str | None = None) -> list[SlackMessage]:
    """The answer as one or more messages: text, then Sources, notes and feedback last."""
    tail = tail_blocks(answer, unread=unread, style=style, experts=experts, share_key=share_key)
    return pack_messages(body_blocks(answer, style), tail)


def uses_agent_blocks(message: SlackMessage) -> RenderStyle:
    """Which of the newer block types `message` carries."""
    kinds = {b.get("type") for b in message.blocks}
    return RenderStyle(markdown="markdown" in kinds, feedback_buttons="context_actions" in kinds)


def downgrade(blocks: tuple[dict, ...] | list[dict], style: RenderStyle) -> list[dict]:
    """`blocks` with the newer kinds `style` doesn't allow replaced by their classic twins: a
    `markdown` block by mrkdwn sections of the same text, feedback buttons by plain buttons."""
    out: list[dict] = []
    for block in blocks:
        if block.get("type") == "markdown" and not style.markdown:
            raw = block["text"].replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            out.extend(section(t) for t in split_blocks(to_mrkdwn_blocks(raw), SAFE_SECTION))
        elif block.get("type") == "context_actions" and not style.feedback_buttons:
            votes = [feedback_vote({"action_id": e.get("action_id"), "value": (e.get("positive_button") or {})
                                    .get("value")}) for e in block.get("elements", [])]
            out.extend(feedback_block(vote[0], CLASSIC) for vote in votes if vote)
        else:
            out.append(block)
    return out


def downgraded_message(message: SlackMessage, style: RenderStyle) -> SlackMessage:
    blocks_ = downgrade(message.blocks, style)
    return SlackMessage(_fallback_text(blocks_), tuple(blocks_[:MAX_BLOCKS]))


def _size(block: dict) -> int:
    if block["type"] == "section":
        return len(block.get("text", {}).get("text", ""))
    if block["type"] == "markdown":
        return len(block.get("text", ""))
    return 0


def pack_messages(body: list[dict], tail: list[dict]) -> list[SlackMessage]:
    """Fill messages up to MAX_BLOCKS blocks, MESSAGE_TEXT_LIMIT characters and Slack's
    `markdown` budget; the tail stays together at the end (in a message of its own if it doesn't
    fit after the body)."""

    def markdown_chars(blocks: list[dict]) -> int:
        return sum(_size(b) for b in blocks if b["type"] == "markdown")

    def fits(blocks: list[dict], more: list[dict]) -> bool:
        together = blocks + more
        return (len(together) <= MAX_BLOCKS and sum(_size(b) for b in together) <= MESSAGE_TEXT_LIMIT - 1000
                and markdown_chars(together) <= SAFE_MARKDOWN)

    messages: list[list[dict]] = []
    current: list[dict] = []
    for block in body:
        if current and not fits(current, [block]):
            messages.append(current)
            current = []
        current.append(block)
    if current and fits(current, tail):
        current.extend(tail)
    else:
        if current:
            messages.append(current)
        current = list(tail)
    if current:
        messages.append(current)
    return [SlackMessage(_fallback_text(blocks), tuple(blocks)) for blocks in messages]


def _fallback_text(blocks: list[dict]) -> str:
    """The message `text` (notifications, and what a thread history read gives back)."""
    # Only the answer itself (and an expert's mention, which should notify them): this is also
    # what a later thread read feeds back as history.
    texts = [
        b["text"] if b["type"] == "markdown" else b["text"]["text"]
        for b in blocks
        if (b["type"] == "section" and not str(b.get("block_id", "")).startswith(SOURCES_BLOCK))
        or b["type"] == "markdown"
    ]
    return "\n\n".join(texts)[:MESSAGE_TEXT_LIMIT] or "docent"
