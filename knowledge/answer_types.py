"""What kind of value a question asks for, and whether a sentence holds one.

"How long …", "how much does … cost", "what time …", "who do I contact …": most questions people
ask a handbook bot want a value of a kind — a duration, an amount of money, a time, a date, a
number, a contact. A passage can be on the question's topic without holding a value of that kind
(the page about PIV cards that never says how long one is valid), which is the typical near miss.
These patterns are deliberately generic English: no word of any one corpus is in them.
"""

from __future__ import annotations

import re

_NUMBER_WORDS = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|"
    r"fifty|sixty|hundred|thousand|million|billion|dozen|half|single|once|twice)"
)
_TIME_UNITS = r"(?:second|minute|hour|day|week|month|year|business day|workday|fiscal year|quarter)s?"

# A value of each kind, in a sentence.
VALUE = {
    "money": re.compile(r"\$\s?\d|\d\s?(?:dollars?|usd|eur|euros?)\b|\b(?:dollars?|cents?)\b|\b\d[\d,.]*\s?(?:million|billion)\b", re.I),
    "percent": re.compile(r"\d\s?%|\bpercent(?:age)?\b", re.I),
    "duration": re.compile(
        rf"\b(?:\d+|{_NUMBER_WORDS}|a|an|few|several)[\s-]+(?:\w+[\s-]+)?{_TIME_UNITS}\b"
        rf"|\b(?:within|after|before|up to|at least|no later than)\b[^.]{{0,30}}\b{_TIME_UNITS}\b"
        r"|\b(?:immediately|same day|overnight)\b",
        re.I,
    ),
    "frequency": re.compile(
        rf"\b(?:daily|weekly|biweekly|monthly|quarterly|annually|yearly|hourly|every\s+\w+(?:\s+{_TIME_UNITS})?|"
        rf"once\s+(?:a|per|every)|twice\s+(?:a|per)|per\s+{_TIME_UNITS}|each\s+{_TIME_UNITS}|a\s+{_TIME_UNITS})\b",
        re.I,
    ),
    "time": re.compile(
        r"\b\d{1,2}(?::\d\d)?\s?(?:a\.?m\.?|p\.?m\.?)(?!\w)|\b\d{1,2}:\d\d\b|\b(?:noon|midnight)\b|\b(?:open|close)s?\b[^.]{0,20}\d",
        re.I,
    ),
    "date": re.compile(
        r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?\s+\d|\b\d{1,2}/\d{1,2}\b"
        r"|\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
        r"|\b(?:end|start|beginning) of (?:the )?(?:month|year|quarter|fiscal year|week|day)\b"
        r"|\bby\s+(?:the\s+)?\d|\b(?:19|20)\d\d\b|\bdeadline\b",
        re.I,
    ),
    "number": re.compile(rf"\b\d[\d,.]*\b|\b{_NUMBER_WORDS}\b", re.I),
    "contact": re.compile(
        r"[\w.+-]+@[\w-]+\.[\w.]+|(?<!\w)[#@][a-z0-9][\w-]+"
        r"|\b(?:team|office|desk|specialist|coordinator|manager|officer|lead|supervisor|channel|help ?desk|"
        r"administrator|admin|staff|hr|human resources)\b|\b\d{3}[-.) ]\s?\d{3}[-. ]\d{4}\b",
        re.I,
    ),
}

# What a question asks for, most specific first.
_ASKS = (
    ("percent", re.compile(r"\b(?:what|which)\s+(?:\w+\s+)?(?:percent(?:age)?|rate)\b|\bpercent(?:age)?\b|%", re.I)),
    ("money", re.compile(
        r"\bhow (?:big|large)\b[^?.]{0,30}\b(?:payouts?|awards?|bonus\w*|stipends?|budgets?)\b"
        r"|\bhow much\b[^?.]{0,40}\b(?:cost|pay|paid|charge|spend|reimburs\w*|budget|price|fee|worth|allowance|"
        r"stipend|subsidy|award|bonus|payout)"
        r"|\b(?:cost|price|fee|salary|stipend|subsidy|payouts?|per diem)\b[^?.]{0,30}\?"
        r"|\bhow much (?:money|is the|are the)\b"
        r"|\b(?:max|maximum|cap|limit)\b[^?.]{0,30}\b(?:pay|spend|reimburs\w*|subsidy|amount|put)\b",
        re.I,
    )),
    ("frequency", re.compile(r"\bhow (?:often|frequently)\b|\bhow many times\b", re.I)),
    ("duration", re.compile(
        r"\bhow long\b|\bhow (?:soon|fast|quickly)\b|\bhow many (?:\w+ )?(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b"
        r"|\bhow far (?:ahead|in advance)\b|\bturnaround\b|\bhow much (?:notice|time|lead time)\b",
        re.I,
    )),
    ("time", re.compile(r"\bwhat time\b|\bwhen (?:does|do|is) [^?]{0,30}\b(?:open|close|start|end)\b|\b(?:opening|closing) (?:time|hours)\b", re.I)),
    ("date", re.compile(
        r"\bwhen (?:is|are|was|were|do|does)\b[^?]{0,40}\b(?:due|deadline|start|begin|end|happen|held|meet)"
        r"|\bwhat (?:day|date)\b|\bdeadline\b|\bdue\b",
        re.I,
    )),
    ("number", re.compile(r"\bhow many\b|\bhow much\b|\bnumber of\b|\b(?:max|maximum|minimum|min|most|least|limit|cap)\b", re.I)),
    ("contact", re.compile(r"\bwho (?:do|should|can|to)\b|\bwho(?:'s| is) (?:the|my|our)\b|\b(?:contact|email address|phone|reach out to|ping)\b", re.I)),
)


def asked_kind(question: str) -> str | None:
    """The kind of value `question` asks for (money, duration, …), or None."""
    for kind, pattern in _ASKS:
        if pattern.search(question):
            return kind
    return None


def holds(sentence: str, kind: str) -> bool:
    """Whether `sentence` contains a value of `kind`."""
    return bool(VALUE[kind].search(sentence))
