"""PII and secret redaction for logs and for question text stored in the ledger.

`redact` replaces what it recognises with a typed placeholder — `[EMAIL]`, `[PHONE]`,
`[CARD]`, `[SSN]`, `[IP]`, `[SECRET]` — so a log still says *what kind* of thing was there.
Recognisers are deliberately conservative where plain numbers are ambiguous: card numbers
must pass the Luhn check and start like a real card, phone numbers need phone-like grouping
or a leading `+`, SSNs need their dashes. Versions, dates, prices and ISBNs stay readable.

`question_hash` is for `settings.store_question == "hash"`: an HMAC-SHA256 of the normalized
question under a secret salt, so equal questions can be counted without storing them.
`RedactingFilter` is a `logging.Filter` that redacts each record's final message.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
from collections.abc import Callable

from bot.guards.normalize import normalize_text

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
SSN = "[SSN]"
IP = "[IP]"
SECRET = "[SECRET]"

# --- secrets: most specific first, before number recognisers can split them ---------------
_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    # JWT: three base64url parts, header and payload both JSON objects ("eyJ" = '{"').
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),  # Slack bot/user/app-level tokens
    re.compile(r"\bxapp-\d-[A-Za-z0-9-]{10,}"),  # Slack app tokens
    re.compile(r"\bsk-(?:ant-|proj-|live-|test-)?[A-Za-z0-9_-]{20,}"),  # Anthropic / OpenAI / Stripe style
    re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}"),  # GitHub
    re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}"),  # GitLab
    re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),  # Google API keys
)
# "Bearer <token>" / "Authorization: Basic <b64>": keep the scheme word, hide the credential.
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{12,}", re.IGNORECASE)
# key=value / "password": "…" style secrets in logs and config snippets.
_ASSIGNED_SECRET = re.compile(
    r"""(?i)\b((?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd|client[_-]?secret|signing[_-]?secret)["']?\s*[:=]\s*["']?)([^\s"',;]{8,})"""
)
# AWS secret access keys are 40 base64 characters with no prefix: only redacted near "aws".
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_CONTEXT = re.compile(r"aws|amazon|secret[_ ]?access", re.IGNORECASE)

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])")
_VERSION_BEFORE = re.compile(r"\b(?:version|ver\.?|release|build)\s*$", re.IGNORECASE)

_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
_ISBN_BEFORE = re.compile(r"isbn(?:-1[03])?:?\s*$", re.IGNORECASE)

_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")

# International: "+" then 7–15 digits in groups. US: (555) 123-4567, 555-123-4567, 555.123.4567.
_PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,6}(?![\d])")
_PHONE_US = re.compile(
    r"(?<![\w.+-])(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?(?![\w.-]*\d)"
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _sub(pattern: re.Pattern[str], text: str, replace: Callable[[re.Match[str]], str]) -> str:
    return pattern.sub(replace, text)


def _card(m: re.Match[str]) -> str:
    raw = m.group(0)
    digits = re.sub(r"\D", "", raw)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or not luhn_valid(digits):
        return raw
    if _ISBN_BEFORE.search(m.string[max(0, m.start() - 12) : m.start()]):
        return raw
    # Card numbers are written in one style: all digits, or groups of 4 (Amex 4-6-5).
    groups = re.split(r"[ -]", raw)
    if len(groups) > 1 and not all(len(g) in (4, 5, 6) for g in groups[:-1]):
        return raw
    return CARD


def _ipv4(m: re.Match[str]) -> str:
    raw = m.group(0)
    if _VERSION_BEFORE.search(m.string[max(0, m.start() - 10) : m.start()]):
        return raw
    try:
        ipaddress.IPv4Address(raw)
    except ValueError:
        return raw
    return IP


def _ipv6(m: re.Match[str]) -> str:
    raw = m.group(0)
    if raw.count(":") < 2 or len(raw.replace(":", "")) < 2:
        return raw
    try:
        ipaddress.IPv6Address(raw)
    except ValueError:
        return raw
    return IP


def _phone_intl(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(0))
    return PHONE if 7 <= len(digits) <= 15 else m.group(0)


def _aws_secret(m: re.Match[str]) -> str:
    window = m.string[max(0, m.start() - 80) : m.start()]
    raw = m.group(0)
    # Real keys mix cases and digits; a 40-letter word run is not one.
    mixed = re.search(r"[a-z]", raw) and re.search(r"[A-Z]", raw) and re.search(r"\d", raw)
    return SECRET if mixed and _AWS_CONTEXT.search(window) else raw


def redact(text: str) -> str:
    """`text` with emails, phones, cards, SSNs, IPs and secrets replaced by typed placeholders."""
    if not text:
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(SECRET, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {SECRET}", text)
    text = _ASSIGNED_SECRET.sub(lambda m: f"{m.group(1)}{SECRET}", text)
    text = _sub(_AWS_SECRET, text, _aws_secret)
    text = _EMAIL.sub(EMAIL, text)
    text = _sub(_IPV6_CANDIDATE, text, _ipv6)
    text = _sub(_IPV4, text, _ipv4)
    text = _sub(_CARD, text, _card)
    text = _SSN.sub(SSN, text)
    text = _sub(_PHONE_INTL, text, _phone_intl)
    text = _PHONE_US.sub(PHONE, text)
    return text


def question_hash(text: str, salt: str | bytes) -> str:
    """Salted SHA-256 (HMAC) hex of the normalized, case-folded question.

    The salt must be secret and stable: without it, short questions could be recovered by
    hashing guesses.
    """
    if not salt:
        raise ValueError("question_hash needs a non-empty salt")
    key = salt.encode() if isinstance(salt, str) else salt
    canonical = normalize_text(text).casefold()
    return hmac.new(key, canonical.encode("utf-8"), hashlib.sha256).hexdigest()


class RedactingFilter(logging.Filter):
    """Redacts the fully formatted message of every record that passes through.

    The message is rendered once (`msg % args`), redacted, and stored back with the args
    cleared, so a secret passed as an argument is caught too. Attach it to handlers (it then
    covers records from every logger) or to a logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: redact the parts we have
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        # Handlers format the traceback only after filters ran: render it here so it is redacted
        # too (formatters reuse a set exc_text instead of formatting exc_info again).
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_RECORD_FIELDS and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


# Attributes every LogRecord has; anything else arrived through `extra=` and is redacted too.
_STANDARD_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName",
}
