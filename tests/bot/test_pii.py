"""PII redaction on a labelled set: what must be redacted, and look-alikes that must survive."""

from __future__ import annotations

import logging

import pytest

from bot.guards.pii import RedactingFilter, luhn_valid, question_hash, redact

# (text, the value that must disappear, the placeholder that must replace it)
POSITIVES = [
    ("Mail jane.doe+hr@agency.gov today", "jane.doe+hr@agency.gov", "[EMAIL]"),
    ("call +1 (415) 555-0132 now", "555-0132", "[PHONE]"),
    ("call 415-555-0132 now", "415-555-0132", "[PHONE]"),
    ("call (415) 555-0132 now", "(415) 555-0132", "[PHONE]"),
    ("call 415.555.0132 now", "415.555.0132", "[PHONE]"),
    ("London office +44 20 7946 0958", "7946 0958", "[PHONE]"),
    ("Berlin +49 30 1234567", "1234567", "[PHONE]"),
    ("card 4111 1111 1111 1111 expired", "4111 1111 1111 1111", "[CARD]"),
    ("card 4111-1111-1111-1111 expired", "4111-1111-1111-1111", "[CARD]"),
    ("card 5555555555554444 expired", "5555555555554444", "[CARD]"),
    ("amex 378282246310005", "378282246310005", "[CARD]"),
    ("my SSN is 123-45-6789", "123-45-6789", "[SSN]"),
    ("server 10.20.30.40 is down", "10.20.30.40", "[IP]"),
    ("v6 host 2001:db8::8a2e:370:7334 down", "2001:db8::8a2e:370:7334", "[IP]"),
    ("token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-123456789012", "[SECRET]"),
    ("user token xoxp-1234567890-abcdefghijklmnop", "xoxp-1234567890", "[SECRET]"),
    ("app token xapp-1-A0123456789-1234567890123-abcdef0123", "xapp-1-A0123456789", "[SECRET]"),
    ("key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "sk-ant-api03", "[SECRET]"),
    ("key sk-proj-AbCdEfGhIjKlMnOpQrStUvWx", "sk-proj-AbCd", "[SECRET]"),
    ("AWS id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "[SECRET]"),
    ("temp id ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A", "[SECRET]"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI", "[SECRET]"),
    ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdef", "[SECRET]"),
    ("Authorization: Bearer abc123def456ghi789jkl", "abc123def456", "[SECRET]"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "eyJhbGciOiJIUzI1NiJ9",
        "[SECRET]",
    ),
    ("config password: hunter2hunter2", "hunter2hunter2", "[SECRET]"),
]

# Text that looks numeric or technical but is not personal data: must come back unchanged.
NEGATIVES = [
    "Upgrade to version 1.2.3 or 10.0.19041.1 before Friday.",
    "Python v3.11.4.2 is installed.",
    "The retro is on 2024-01-15 at 10:30.",
    "Due 12/25/2024, fiscal year 2023-2024.",
    "The laptop costs $1,234.56 (or 1234.56 EUR).",
    "ISBN 978-0-306-40615-7 and ISBN 9780306406157 are on the shelf.",
    "Order 1234567890 shipped; ticket #4111111111111112 is open.",
    "Pi is 3.14159265358979 and e is 2.718.",
    "Room 415 on floor 5, call extension 4-0132.",
    "Meet at 12:30:45 by the ::1 loopback discussion.",
    "The SHA is 3f786850e387550fdab836ed7e6dc881de23001b.",
    "The aws region us-east-1 hosts the bucket docent-prod-uploads-2024.",
    "Use sk-learn for modelling and task-123 for tracking.",
]


@pytest.mark.parametrize("text,secret,placeholder", POSITIVES)
def test_personal_data_and_secrets_are_replaced_by_typed_placeholders(text, secret, placeholder):
    out = redact(text)
    assert secret not in out
    assert placeholder in out


@pytest.mark.parametrize("text", NEGATIVES)
def test_lookalikes_are_not_redacted(text):
    assert redact(text) == text


def test_luhn():
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_surrounding_text_survives():
    assert redact("Ask bob@example.com about 10.0.0.1, thanks!") == "Ask [EMAIL] about [IP], thanks!"


def test_question_hash_is_salted_stable_and_normalised():
    a = question_hash("How do I get a laptop?", salt="s1")
    assert a == question_hash("  how do I get a\u200b laptop? ", salt="s1")
    assert a != question_hash("How do I get a laptop?", salt="s2")
    assert a != question_hash("How do I get a phone?", salt="s1")
    assert len(a) == 64 and int(a, 16) >= 0
    with pytest.raises(ValueError):
        question_hash("x", salt="")


def test_logging_filter_redacts_message_and_args(caplog):
    logger = logging.getLogger("docent.test.pii")
    handler_filter = RedactingFilter()
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="docent.test.pii"):
            logger.info("user %s sent key %s (%d chars)", "jane@agency.gov", "xoxb-1234567890-abcdefghijkl", 28)
            logger.info("plain message with 4111 1111 1111 1111")
    finally:
        logger.removeFilter(handler_filter)
    text = caplog.text
    assert "jane@agency.gov" not in text and "xoxb-1234567890" not in text and "4111 1111" not in text
    assert "user [EMAIL] sent key [SECRET] (28 chars)" in text
    assert "plain message with [CARD]" in text


def test_tracebacks_and_extra_fields_are_redacted_in_json_logs():
    import io
    import json as _json
    import logging as _logging

    from bot.guards.pii import RedactingFilter
    from bot.logs import JsonFormatter

    stream = io.StringIO()
    handler = _logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    log = _logging.getLogger("test.redaction.traceback")
    log.addHandler(handler)
    log.propagate = False
    token = "xoxb-1234567890-0987654321-abcdefghijklmnopqrstuvwx"
    try:
        raise RuntimeError(f"Slack said no to {token}")
    except RuntimeError:
        log.exception("call failed", extra={"detail": f"mail me at jane.doe@example.com, key {token}"})
    finally:
        log.removeHandler(handler)
    event = _json.loads(stream.getvalue())
    assert token not in stream.getvalue() and "jane.doe@example.com" not in stream.getvalue()
    assert "RuntimeError" in event["exc"] and "[SECRET]" in event["exc"]
    assert "[EMAIL]" in event["detail"]
