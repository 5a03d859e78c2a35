"""What every format parser writes into: a `Draft` of cleaned sections, and the text cleaning."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from knowledge.types import Section

# Invisible characters that carry no meaning in prose and break matching. Zero-width joiners
# (U+200C/U+200D) stay: Persian, Indic scripts and emoji sequences need them.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u2060\ufeff\u00ad\u180e"), None)
_SPACE_LIKE = dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u3000"), " ")
# C0 controls except tab/newline (carriage returns are normalised before), DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass
class Draft:
    """Sections gathered while parsing, before they are frozen into a LoadedDocument."""

    sections: list[Section] = field(default_factory=list)
    first_h1: str | None = None
    warnings: list[str] = field(default_factory=list)

    def enter_heading(self, path: list[tuple[int, str]], level: int, heading: str) -> None:
        """A heading at `level` closes deeper-or-equal open headings and opens itself in `path`."""
        while path and path[-1][0] >= level:
            path.pop()
        if heading:
            path.append((level, heading))
            if level <= 1 and self.first_h1 is None:
                self.first_h1 = heading

    def add(self, text: str, *, page: int | None = None, heading_path: tuple[str, ...] = ()) -> None:
        text = clean_text(text).strip("\n")
        if text.strip():
            self.sections.append(Section(text=text, page=page, heading_path=heading_path))


def clean_text(text: str) -> str:
    """Normalise line ends and Unicode; drop NULs, control and invisible characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = unicodedata.normalize("NFC", text)
    text = text.translate(_INVISIBLE).translate(_SPACE_LIKE)
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    return _MANY_BLANK_LINES.sub("\n\n", text)


def mb(n: int) -> str:
    """Bytes as megabytes for a user-facing message: 2097152 → "2", 1572864 → "1.5"."""
    return f"{n / (1024 * 1024):.1f}".rstrip("0").rstrip(".")
