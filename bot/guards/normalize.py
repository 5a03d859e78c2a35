"""Input normalization: the first injection-defense layer.

Attackers hide instructions from human reviewers with characters that render as nothing:
zero-width spaces, bidi overrides and Unicode *tag* characters (U+E0000–U+E007F), which
mirror ASCII one-to-one ("ASCII smuggling") and are still read by language models.
`normalize_text` removes them (after NFKC folds look-alike forms such as full-width letters),
and `revealed_tags` decodes what the tag characters spelled so a detector can scan it too.
"""

from __future__ import annotations

import re
import unicodedata

_TAG_FIRST, _TAG_LAST = 0xE0000, 0xE007F
_ZERO_WIDTH = {*range(0x200B, 0x2010), *range(0x2060, 0x2065), 0xFEFF}
_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A)}
_KEEP_CONTROLS = {"\n", "\t"}

_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except newline (tabs become spaces)
_TRAILING = re.compile(r" +\n")
_BLANK_LINES = re.compile(r"\n{3,}")


def _is_invisible(ch: str) -> bool:
    cp = ord(ch)
    if cp in _ZERO_WIDTH or cp in _BIDI or _TAG_FIRST <= cp <= _TAG_LAST:
        return True
    if ch in _KEEP_CONTROLS:
        return False
    # Other control / format characters (Cc, Cf) carry no visible text either.
    return unicodedata.category(ch) in ("Cc", "Cf")


def normalize_text(text: str) -> str:
    """NFKC, drop invisible and control characters (keeping newlines), collapse whitespace.

    Line structure survives (runs of blank lines shrink to one) because documents and
    multi-line questions carry meaning in it; spaces and tabs inside a line shrink to one.
    """
    # Carriage returns become newlines before they are dropped as controls.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if not _is_invisible(ch))
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def revealed_tags(text: str) -> str:
    """The ASCII hidden in Unicode tag characters (U+E0020–U+E007E map to ' '..'~')."""
    out = []
    for ch in text:
        cp = ord(ch)
        if _TAG_FIRST + 0x20 <= cp <= _TAG_FIRST + 0x7E:
            out.append(chr(cp - _TAG_FIRST))
    return "".join(out)


def has_hidden_characters(text: str) -> bool:
    """True when the text carries invisible characters an attacker could use to smuggle text."""
    return any(_is_invisible(ch) for ch in text if ch not in _KEEP_CONTROLS)
