"""Follow-ups in a thread: what to search for when a question leans on the one before it.

In a thread people write "is that allowed?" or "and how long does it take?" after a first
question. Searched alone, such a follow-up finds nothing (it names no subject), so docent would
say the documents don't answer. `search_text(question, earlier)` is what retrieval and the
answerability score read instead: a follow-up that depends on the thread gets the asker's own
earlier question in front of it ("can i expense uber rides on travel … is that allowed?"); a
question that stands on its own ("thanks! unrelated: how do i get a piv card?") is searched as it
is, so a change of subject is never blurred by the old one.

What a follow-up can lean on are the thread's *questions* (`thread_questions`): the asker's own
earlier messages, and another person's message that docent answered ("@docent how do i expense a
taxi?" from Ana, then from Ben: "and for contractors?"). Such a message was put to docent and went
through the same guards as any question. Docent's replies and other people's chatter (a message
docent did not answer) never enter the search. The model still sees the literal question with the
thread (Claude resolves the reference itself); the extractive answerer weighs the same context.

A question *depends* on the thread unless it says it changes the subject ("unrelated: …",
"different question …", "btw …"): when it starts with a connective ("and …", "what about …"),
refers back ("it", "that", "they", "the same", …), or names at most `MAX_OWN_TERMS` content
words of its own. A question with none of these names its own subject and is searched alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from knowledge.text import content_terms

MAX_OWN_TERMS = 3  # "who approves it" / "how much?" / "is that allowed?" / "what about contractors"
MAX_EARLIER = 2  # a follow-up to a follow-up reads back this many questions at most

# A change of subject said out loud: "unrelated: …", "different topic -", "side q", "btw".
_NEW_SUBJECT = re.compile(
    r"\b(?:unrelated|btw|by the way|switching gears|chang(?:e|ing) (?:the )?subject|on (?:a|an)?\s*other note"
    r"|(?:different|separate|another|new|other|side|random|diff|quick)(?:\s+\w+)?\s+(?:q|qs|question|questions|topic|thing|subject)\b)",
    re.IGNORECASE,
)
_CONNECTIVE = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|cool|thanks|thx|ty|great|got it|nice|perfect)\W+)?"
    r"(?:and|also|but|so|or|then|plus|what about|how about|what if|same for|same with|same goes for)\b",
    re.IGNORECASE,
)
# A word that points back at something said before ("it", "they", "that one", "the same").
_REFERENCE = re.compile(
    r"\b(?:it|its|it's|it'd|it'll|that|that's|this|those|these|they|they're|them|their|theirs|there|such"
    r"|the same|one|ones|he|she|him|her)\b",
    re.IGNORECASE,
)


def depends_on_thread(question: str) -> bool:
    """Whether `question`, read alone, leans on the thread (see the module docstring)."""
    text = question.replace("’", "'")
    if _NEW_SUBJECT.search(text):
        return False
    return (
        len(content_terms(text)) <= MAX_OWN_TERMS
        or bool(_CONNECTIVE.search(text))
        or bool(_REFERENCE.search(text))
    )


def thread_context(question: str, earlier: Sequence[str]) -> str:
    """The asker's earlier questions `question` leans on (oldest first, `MAX_EARLIER` at most),
    joined; "" when it stands on its own or there is nothing earlier."""
    if not depends_on_thread(question):
        return ""
    context: list[str] = []
    for text in reversed([t.strip() for t in earlier if t and t.strip()]):
        context.insert(0, text)
        if len(context) >= MAX_EARLIER or not depends_on_thread(text):
            break
    return " ".join(context)


def thread_question_indices(history: Sequence[tuple[str, str]], to_docent: Sequence[bool] = ()) -> list[int]:
    """Where a thread's questions stand in `history`, (role, text) pairs in thread order (role
    "user" the asker, "assistant" docent, anything else another person): every message of the
    asker's, and every message of someone else's that a reply of docent's answered (empty
    messages don't count).

    A reply answers one message since docent's previous reply: the latest one put to docent
    (`to_docent[i]`: it @mentioned docent, or it is a slash command's question), else the one
    right before the reply. People keep talking while docent writes, so the message just before
    its reply is often someone's chatter; the mention says which one was asked."""
    said = [i for i, (_, text) in enumerate(history) if text and text.strip()]
    asked = set(i for i in said if history[i][0] == "user")
    since: list[int] = []  # messages since docent's previous reply
    for i in said:
        if history[i][0] != "assistant":
            since.append(i)
            continue
        if since:
            marked = [j for j in since if j < len(to_docent) and to_docent[j]]
            asked.add(marked[-1] if marked else since[-1])
        since = []
    return sorted(asked)


def thread_questions(history: Iterable[tuple[str, str]], to_docent: Sequence[bool] = ()) -> list[str]:
    """The questions of a thread (`thread_question_indices`), oldest first."""
    history = list(history)
    return [history[i][1] for i in thread_question_indices(history, to_docent)]


def search_text(question: str, earlier: Sequence[str]) -> str:
    """What to search for: `question` alone, or its thread context followed by it."""
    context = thread_context(question, earlier)
    return f"{context} {question}" if context else question
