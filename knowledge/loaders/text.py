"""Plain text and Markdown, and the text decoding HTML shares (BOM → declared charset → strict
UTF-8 → charset-normalizer)."""

from __future__ import annotations

import codecs
import logging
import re

from knowledge.loaders.draft import Draft
from knowledge.types import CorruptDocument, UnsupportedDocument

log = logging.getLogger(__name__)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Encodings that browsers treat as windows-1252 (the WHATWG encoding standard does the same).
_AS_CP1252 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "ascii", "us-ascii", "windows-1252", "cp1252"}


def decode_text(name: str, data: bytes, declared: str | None = None) -> str:
    """Bytes of a text file → str: BOM, declared charset, strict UTF-8, then detection."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise CorruptDocument(name, f"the text isn't valid {encoding.upper()}") from exc
    if declared:
        encoding = "cp1252" if declared.lower() in _AS_CP1252 else declared
        try:
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            log.info("declared charset %r doesn't decode %s; detecting", declared, name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = _detect_and_decode(name, data)
    if "\x00" in text and _binary_looking(text):
        # ASCII-range UTF-16 without a BOM is valid UTF-8 full of NULs: let detection decide.
        text = _detect_and_decode(name, data)
        if _binary_looking(text):
            raise UnsupportedDocument(name, "this looks like a binary file, not text")
    return text


def _detect_and_decode(name: str, data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        raise UnsupportedDocument(name, "this looks like a binary file, not text")
    # charset-normalizer often ranks cp1250 above cp1252 for Western European text when the
    # two decode equally cleanly; cp1252 is by far the more common legacy encoding, so among
    # the cleanest candidates prefer one that cp1252 explains.
    least_chaos = min(m.chaos for m in matches)
    cleanest = [m for m in matches if m.chaos <= least_chaos + 1e-9]
    for m in cleanest:
        if "cp1252" in m.could_be_from_charset:
            return data.decode("cp1252", errors="replace")
    best = max(cleanest, key=lambda m: m.coherence)
    if best.chaos > 0.5:
        raise UnsupportedDocument(name, "this looks like a binary file, not text")
    return str(best)


def _binary_looking(text: str) -> bool:
    sample = text[:4096]
    controls = sum(1 for ch in sample if ch == "\x00" or (ord(ch) < 32 and ch not in "\t\n\r\f"))
    # Real text may carry a few stray control characters (they are stripped); binaries carry many.
    return controls > max(4, len(sample) // 10)


# ---------------------------------------------------------------------------------------------
# Plain text and Markdown

def load_text(text: str, draft: Draft) -> None:
    draft.add(text)


_FRONT_MATTER = re.compile(r"\A(?:\ufeff)?---[ \t]*\n(.*?\n)?(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.S)
_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def load_markdown(text: str, draft: Draft) -> str | None:
    title: str | None = None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _FRONT_MATTER.match(text)
    if m:
        title = _front_matter_title(m.group(1) or "")
        text = text[m.end():]

    path: list[tuple[int, str]] = []  # (level, heading) from the outermost in
    lines: list[str] = []
    fence: str | None = None  # the opening fence while inside a code block

    def flush() -> None:
        draft.add("\n".join(lines), heading_path=tuple(h for _, h in path))
        lines.clear()

    for line in text.split("\n"):
        if fence is not None:
            lines.append(line)
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                fence = None
            continue
        f = _FENCE.match(line)
        if f:
            fence = f.group(1)
            lines.append(line)
            continue
        h = _ATX_HEADING.match(line)
        if h:
            heading = _inline_markdown_to_text(h.group(2) or "")
            flush()
            draft.enter_heading(path, len(h.group(1)), heading)
            continue
        lines.append(line)
    flush()
    if not draft.sections and path:
        # Only headings, no body: the headings are the text.
        draft.add("\n".join(h for _, h in path))
    return title


def _front_matter_title(block: str) -> str | None:
    import yaml

    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError:
        return None
    if isinstance(meta, dict):
        title = meta.get("title")
        if isinstance(title, (str, int, float)):
            return str(title)
    return None


_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(.+?)\1")


def _inline_markdown_to_text(s: str) -> str:
    s = _MD_LINK.sub(r"\1", s)
    s = _MD_EMPHASIS.sub(r"\2", s)
    return " ".join(s.split())


