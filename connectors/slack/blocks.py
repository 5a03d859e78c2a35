"""Block Kit for docent's Slack messages: the placeholder, streamed progress, the answer with its
Sources and 👍/👎 buttons, and plain notices — all within Slack's size limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.types import Answer, Attachment, Outcome, Source
from connectors.slack.mrkdwn import document_text, escape, split_blocks, split_text, to_mrkdwn, to_mrkdwn_blocks

# Slack's published limits.
SECTION_TEXT_LIMIT = 3000
CONTEXT_TEXT_LIMIT = 2000
MAX_BLOCKS = 50
MESSAGE_TEXT_LIMIT = 40_000
# A little under the limits: room for the "…" of progress and for Slack counting differently.
SAFE_SECTION = SECTION_TEXT_LIMIT - 20

PLACEHOLDER_TEXT = "Looking through the documents…"
FEEDBACK_BLOCK_ID = "docent_feedback"
SOURCES_BLOCK = "docent_sources"
FEEDBACK_UP = "docent_feedback_up"
FEEDBACK_DOWN = "docent_feedback_down"


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


def feedback_block(request_id: str) -> dict:
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


def unread_attachments_note(attachments: tuple[Attachment, ...]) -> str:
    names = ", ".join(document_text(a.name) for a in attachments)
    return (
        f":paperclip: I didn't read the attached file{'s' if len(attachments) > 1 else ''} ({names}): "
        "I only answer from documents an admin added. An admin can add it by mentioning me with `learn`."
    )


def answer_messages(answer: Answer, *, unread: tuple[Attachment, ...] = ()) -> list[SlackMessage]:
    """The answer as one or more messages: text sections, then Sources, notes and feedback last."""
    if answer.outcome in (Outcome.answered, Outcome.abstained):
        body = split_blocks(to_mrkdwn_blocks(answer.text), SAFE_SECTION)
    else:
        # Refusals and errors are docent's own friendly sentences: show them as written.
        body = split_text(escape(answer.text), SAFE_SECTION)
    body_blocks = [section(text) for text in body] or [section("…")]

    tail: list[dict] = []
    if answer.outcome is Outcome.answered:
        tail.extend(sources_blocks(answer.sources))
    notes = [escape(n) for n in answer.notices]
    if unread:
        notes.append(unread_attachments_note(unread))
    tail.extend(context(n) for n in notes)
    if answer.request_id and answer.outcome in (Outcome.answered, Outcome.abstained):
        tail.append(feedback_block(answer.request_id))
    return pack_messages(body_blocks, tail)


def pack_messages(body: list[dict], tail: list[dict]) -> list[SlackMessage]:
    """Fill messages up to MAX_BLOCKS blocks and MESSAGE_TEXT_LIMIT characters; the tail stays
    together at the end (in a message of its own if it doesn't fit after the body)."""

    def size(block: dict) -> int:
        text = block.get("text", {}).get("text", "") if block["type"] == "section" else ""
        return len(text)

    messages: list[list[dict]] = []
    current: list[dict] = []
    chars = 0
    for block in body:
        if current and (len(current) + 1 > MAX_BLOCKS or chars + size(block) > MESSAGE_TEXT_LIMIT - 1000):
            messages.append(current)
            current, chars = [], 0
        current.append(block)
        chars += size(block)
    tail_chars = sum(size(b) for b in tail)
    if current and len(current) + len(tail) <= MAX_BLOCKS and chars + tail_chars <= MESSAGE_TEXT_LIMIT - 1000:
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
    # Only the answer itself: this is also what a later thread read feeds back as history.
    texts = [
        b["text"]["text"]
        for b in blocks
        if b["type"] == "section" and not str(b.get("block_id", "")).startswith(SOURCES_BLOCK)
    ]
    return "\n\n".join(texts)[:MESSAGE_TEXT_LIMIT] or "docent"
