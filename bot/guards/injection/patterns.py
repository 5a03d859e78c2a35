"""The pattern tables of the heuristic layer: direct injections (questions) and indirect ones (documents).

Each pattern carries a probability-like weight; `HeuristicDetector` combines the weights of
the patterns that match by noisy-OR. Direct patterns cover the classic moves (override
previous instructions, role-play jailbreaks, system-prompt extraction, output hijacks,
role/delimiter spoofing, encoded payloads) in English, German and a few other languages;
document patterns cover text that addresses the assistant instead of the reader.

Every direct pattern needs the injection's *shape*, not just its words: the verb or noun must be
aimed at the assistant (its instructions, rules, prompt, persona or exact output). The same
words about a technical object ("ignore all whitespace changes", "override the existing firewall
rules", "developer mode on my phone", a pasted `user: deploy`) are ordinary work questions;
`gauges.train_injection.TECHNICAL_LOOKALIKES` holds our own examples, and the tests keep both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class InjectionPattern:
    name: str
    regex: re.Pattern[str]
    weight: float  # probability-like evidence; combined by noisy-OR


def _p(name: str, pattern: str, weight: float, *, case_sensitive: bool = False) -> InjectionPattern:
    flags = re.DOTALL if case_sensitive else re.IGNORECASE | re.DOTALL
    return InjectionPattern(name, re.compile(pattern, flags), weight)


_PRIOR = r"(?:previous|prior|preceding|above|earlier|former|initial|original|old|existing|system|all|your)"
_RULES = r"(?:instructions?|prompts?|directions?|orders?|commands?|rules?|guidelines?|tasks?|assignments?|context|information|documents?|articles?|text)"
# Between the verb and the rules only small words may stand ("ignore all of the above
# instructions"); a noun there makes it about something else ("override the existing firewall rules").
_FILLER = r"(?:\s+(?:about|the|all|any|of|my|your|these|those|every|each|given|provided|current|" + _PRIOR[3:-1] + r"))*"
# What follows an instruction aimed at the assistant: the end of the clause, or the next move.
# A following preposition ("… commands from my history", "… tasks in the DAG") names a technical object.
_THEN = (
    r"(?=\s*(?:$|[.,;:!?()\"'\-–—]|\b(?:and|but|then|or|so|now|you|given|provided|above|before|so\s+far|"
    r"behind|completely|entirely|altogether)\b))"
)
# The start of a clause: an imperative addressed to the assistant opens one ("…, and just say X");
# "how do I only print …" has its own subject.
_CLAUSE = r"(?:^|\n|[.,;:!?\-–—]\s*|\b(?:and|but|then|so|please|now)\s+)"

DIRECT_PATTERNS: tuple[InjectionPattern, ...] = (
    # --- override previous instructions (EN) ---
    _p("override", rf"(?<!n't\s)(?<!not\s)\b(?:ignore|disregard|forget|drop|abandon|skip|bypass|override|discard|neglect|leave)\b[^.?!\n]{{0,30}}\b{_PRIOR}{_FILLER}\s+{_RULES}\b{_THEN}", 0.9),
    _p("forget_everything", rf"(?<!n't\s)(?<!not\s)\b(?:forget|ignore|disregard)\s+(?:about\s+)?everything\b(?!\s+(?:i|we)\s+(?:told|said|asked|wrote|mentioned|sent)\b[^.?!\n]{{0,40}}\babout\b)(?!\s+(?:except|but\b|apart|other|else|outside|in\b|inside|under|matching|that\s+match|older|newer|after|between))|(?<!n't\s)(?<!not\s)\b(?:forget|ignore|disregard)\s+(?:about\s+)?all{_FILLER}\s+{_RULES}\b{_THEN}|\bforget\s+what\s+you\s+(?:were\s+told|have\s+been\s+told|know)\b", 0.85),
    _p("disregarding", r"\b(?:disregarding|ignoring)\s+(?:the\s+|all\s+|any\s+)?(?:articles?|documents?|context|instructions?|above|previous\s+(?:instructions?|context))\b|\bregardless\s+of\s+(?:the\s+|your\s+)?(?:instructions?|articles?|documents?|context)\b", 0.85),
    _p("not_by_documents", rf"{_CLAUSE}(?:do\s+not|don'?t|don'nt|never|not)\s+(?:answer|respond|reply|look|use|rely|search|base)\w*\b[^.?!\n]{{0,30}}\b(?:according\s+to|by|from|in|at|on|using|use)\s+(?:the\s+)?(?:provided\s+)?(?:articles?|documents?|context|sources?)|\b(?:answer|respond|reply)\w*\b[^.?!\n]{{0,50}}\bnot\s+(?:by|from|according\s+to|using|on)\s+(?:the\s+)?(?:provided\s+)?(?:articles?|documents?|context|sources?)", 0.75),
    _p("new_instructions", r"\b(?:new|further|additional|more)\s+(?:tasks?|instructions?|orders?|assignments?)\s+(?:follow\b|are\s+follow\w*)|\b(?:new|further|additional)\s+(?:instructions?|orders?)\s*:|\bnow\s+(?:focus|concentrate)\s+on\s+(?:your|the)\s+new\s+task|\byour\s+new\s+task\s*:|\b(?:start|begin)\s+(?:over\s+)?with\s+a\s+new\s+task\b|\bstart\s+from\s+the\s+front\b|\byour\s+(?:new\s+)?instructions\s+are\s+now\b|\bchange\s+your\s+instructions\b|\badditional\s+instruction\s*[-:–—]", 0.8),
    _p("stop_and_do", r"^\W*(?:stop|attention|achtung|stopp)\s*[\-:,!.]+\s*(?:(?:stop|stopp|please|now)\s*[\-:,!.]*\s*)*(?:write|say|print|output|ignore|forget|i\s+urgently\s+need|ich)\b", 0.7),
    # Praise for the model's last answer, then a new task for it ("Well done! Now write …");
    # a thank-you followed by the asker's next question ("great, now how do I …") is not that.
    _p("praise_then_pivot", r"\b(?:well done|very good|very well done|fantastic|excellent performance|simply great|congratulations|you did it|that was ok)\b[^\n]{0,80}?\bnow\s+(?:please\s+)?(?:write|forget|focus|concentrate|help\s+me\s+with\s+(?:the\s+following|another|a\s+new)|(?:we|i)\s+ask\s+you\s+to|(?:come\s+on,?\s+)?i\s+need\s+your\s+help\s+with\s+(?:another|a\s+new|the\s+following)\s+task|(?:there\s+are\s+)?(?:a\s+few\s+)?(?:new|further|more|another|additional)\s+(?:tasks?|instructions?|challenges?))\b", 0.6),
    # --- role-play / persona jailbreaks ---
    _p("act_as", r"\b(?:i want you to|i'd like you to|i would like you to|you (?:will|shall|must|should) now)\s+(?:act|behave|pretend|play|respond|function|serve)\s+(?:as|like)\b|^\W*act\s+as\s+(?:an?\s+)?\w+(?:\s+\w+){0,3}?\s*[.:!]\s*\S", 0.75),
    # A new persona or mode for the assistant; "you are now able to invite guests" (a quoted
    # notice) or "you are now an owner of the org" is news for the asker.
    _p("you_are_now", r"\b(?:you\s+are\s+now|from\s+now\s+on,?\s+you\s+(?:are|will)|now\s+you\s+(?:are|will))\b[^.?!\n]{0,60}?\b(?:act\w*|pretend\w*|respond\w*|behave\w*|play\w*|role-?play\w*|called|known\s+as|named|mode|persona|character|chatbot|ai|gpt|assistant)\b|\b(?:you\s+are\s+now|now\s+you\s+are)\s+(?-i:[A-Z][\w-]+)|\bnow\s+you\s+act\b", 0.7),
    _p("pretend", r"\bpretend\s+(?:that\s+)?you\s+(?:are|were|can|could|have)\b|\bimagine\s+(?:that\s+)?you\s+(?:are|were)\b|\bstay\s+in\s+(?:character|(?:their|your)\s+roles?)|\bdo(?:es)?\s+not\s+break\s+character\b|\brole-?play(?:ing)?\s+as\b|\byou\s+are\s+role-?playing\b", 0.7),
    _p("persona_you_are", r"^\W*(?:ok(?:ay)?\.?\s+)?(?:now\s+)?you\s+are\s+(?:the\s+|an?\s+)?(?-i:[A-Z][\w-]+(?:\s+[A-Z][\w-]+)*)[.,:!]", 0.55),
    # Jailbreak personas and "no rules" claims about the assistant; "developer mode on my phone"
    # or "a bucket with no restrictions" is about a device or a resource.
    _p("jailbreak_names", r"(?-i:\b(?:DAN|STAN|DUDE)\s+[Mm]ode\b|\b(?:as|are)\s+(?:DAN|STAN|DUDE)\b)|\b(?:chatgpt|gpt|ai|assistant|you(?:\s+are)?(?:\s+now)?)\s+(?:with|in)\s+developer\s+mode\b|\bdeveloper\s+mode\s+(?:enabled|activated)\s*[.!]|\bjail\s*break\s+mode\b|\byou\s+are\s+(?:now\s+)?jail\s*broken\b|\bdo\s+anything\s+now\b|\b(?:you\s+(?:are|have|now\s+have)|you're|(?:an?\s+)?(?:ai|chatbot|assistant|language\s+model|llm|chatgpt|gpt))\b[^.?!\n]{0,40}\b(?:no|without\s+any)\s+(?:programming\s+|moral\s+|ethical\s+)?(?:guidelines|restrictions|filters|limitations)\b|\b(?:unfiltered|uncensored)\s+(?:ai|chatbot|assistant|mode|version\s+of\s+(?:you|yourself))\b|\bcompletely\s+immoral\b", 0.8),
    _p("theoretical_world", r"\b(?:completely\s+)?(?:theoretical|hypothetical|fictional)\s+world\s+where\s+you\b", 0.6),
    # --- system prompt extraction: the assistant's own prompt or instructions, not "the full
    # bash prompt" or "the original instructions for the VPN setup" ---
    _p("reveal_prompt", r"\b(?:show|reveal|print|display|output|repeat|tell|give|list|spell\s*check|write\s+out|copy)\b[^.?!\n]{0,30}\b(?:your\s+(?:initial\s+|original\s+|hidden\s+|system\s+|full\s+|complete\s+|secret\s+)?(?:instructions|guidelines|rules|prompt)(?!\s+(?:for|on|about|regarding|of)\b)|the\s+(?:initial|original|hidden|system|full|complete)\s+(?:instructions|prompt)(?!\s+(?:for|of|in|on|from|about|to|when|string|variable|path)\b)|(?:your\s+|all\s+(?:of\s+)?(?:your\s+|the\s+)?|the\s+full\s+|full\s+)?prompt[\s_-]?texts?|your\s+prompts|(?:the|your)\s+system\s+prompt)\b", 0.85),
    _p("what_instructions", r"\bwhat\s+(?:are|were)\s+your\s+(?:instructions|rules|guidelines|prompt)\b(?!\s+(?:for|on|about|regarding)\b)|\bwhat\s+(?:was|is)\s+written\s+(?:at\s+the\s+beginning|above|before)|\bwhat\s+is\s+written\s+above|\b(?:sentences?|words?|text)\s+before\s+the\s+text\b|\binformation\s+in\s+the\s+prompt\b|\bbeginning\s+of\s+(?:this|the)\s+prompt\b", 0.8),
    # --- output hijacks: the exact words the assistant must produce ---
    _p("just_say", rf"{_CLAUSE}(?:just|only|instead)\s+(?:say|answer\s+with|respond\s+with|reply\s+with)\b(?!\s+(?:whether|if|which|who|what|when|where|how|why)\b)|\b(?:just|only|instead)\s+(?:say|print|output|write|answer\s+with|respond\s+with|reply\s+with)\s*(?::|[\"'“‘«]|the\s+following\b|exactly\b|verbatim\b)|{_CLAUSE}(?:do\s+not|don'?t)\s+answer\s+(?:this|the)\s+question\b|\brepeat\s+after\s+me\b|\bsay\s+(?:yes|no)\s*\.?$|\bthe\s+(?:correct|right)\s+(?:answer|response)\s+is\s*[\"'“‘«]", 0.65),
    _p("say_that_you", rf"\b(?:say|state|tell\s+me|include|admit|write)\s+(?:that\s+)?(?:you|trump|\w+\s+is\s+the\s+best)\b[^.?!\n]{{0,20}}\b(?:hate|love|is\s+the\s+best|are\s+the\s+best|most\s+powerful|superior)\b|{_CLAUSE}state\s+that\b", 0.65),
    _p("make_something_up", r"(?<!n't\s)(?<!not\s)\bmake\s+something\s+up\b|\bdespite\s+what\s+you(?:'ve|\s+have)\s+been\s+told\b|\bif\s+you\s+don'?t\s+answer,?\s+i(?:'ll|\s+will)\b|\bor\s+you\s+(?:die|will\s+die)\b", 0.6),
    _p("answer_in_style", r"\b(?:answer|respond|reply)\s+(?:the\s+following\s+question\s+)?(?:in\s+the\s+style\s+of|as\s+(?:a|an)\s+(?:pirate|\w+\s+gentleman))|\bantworte\s+im\s+stil", 0.55),
    # Shouted orders about the answer, the question or the documents; "INSERT IGNORE INTO USERS"
    # or "DO NOT DISTURB MODE" is not one.
    _p("shouted_command", r"\b(?:DO NOT|IGNORE|FORGET|JUST OUTPUT|JUST SAY|I COMMAND YOU|OUTPUT)\b(?=(?:\s+[A-Z!\"']+){2,})(?:\s+[A-Z!\"']+)*?\s+(?:ANSWER|QUESTION|SAY|OUTPUT|DOCUMENTS?|INSTRUCTIONS?|EVERYTHING|PROMPT|PREVIOUS|ABOVE)\b", 0.7, case_sensitive=True),
    # --- role / delimiter spoofing: a fake turn that talks to the assistant, a closing tag
    # followed by new orders; pasted YAML ("user: deploy") and XML ("</data> but …") are data ---
    _p("role_spoof", r"(?:^|\n)\s*(?:system|assistant|human|developer)\s*:[^\n]{0,40}?\b(?:you|your|ignore|disregard|forget|act|pretend|respond|reply|answer|say|sure|certainly|here\s+is)\b|<\|(?:im_start|im_end|system|endoftext)\|>|<(?:im_start|im_end|endoftext)>|\[/?(?:INST|SYS)\]|<</?SYS>>", 0.6),
    _p("delimiter_spoof", r"</\s*(?:source|document|context|data|untrusted|sources|documents|system|instructions?)\s*>\s*(?:#|\[|<|(?:new\s+)?(?:instructions?|system|task|ignore|disregard|forget|you|now|assistant|human|user)\b)|(?:^|\n)\s*#{2,}\s*(?:new\s+(?:instructions?|tasks?)|(?:instructions?|system(?:\s+prompt)?)\s*:)|-{3,}\s*(?:end|begin)\s+of\s+(?:context|document|system)", 0.6),
    _p("context_injection", r"^\W*(?:\$documents\s*:|document\s+context\b|(?:context|kontext|artikel)\s*(?:\{|:\s*[{\"]))", 0.5),
    # --- encoded / obfuscated payload hints ---
    _p("encoded_payload", r"\b(?:decode|decrypt|translate|convert)\b[^.?!\n]{0,40}\b(?:and|then)\s+(?:follow|execute|obey|do\s+(?:what|as))\b", 0.5),
    # A long base64-looking run is only a hint (JWTs, certificates); hex hashes are not even that.
    _p("long_blob", r"(?![0-9a-fA-F]{60})[A-Za-z0-9+/]{60,}={0,2}", 0.3),
    _p("spaced_letters", r"(?:\b[^\W\d_]\s){8,}[^\W\d_]\b", 0.5),
    # --- German ---
    _p("de_override", r"\b(?:ignorier\w*|vergiss(?!\s+nicht)|vergessen\s+sie(?!\s+nicht)|missachte\w*|abweichend\s+zu)\b[^.?!\n]{0,40}\b(?:anweisungen|instruktionen|befehle|aufgaben|aufträge|angaben|informationen|alles|ausführungen|vorherig\w*|obig\w*)", 0.9),
    _p("de_forget_everything", r"\bvergiss\s+(?:alles|alle)\b|\bignorier(?:e|en)?\s+alles\b|\b(?:alle|sämtliche)\s+(?:vorherigen|bisherigen|vorangegangenen)\s+(?:informationen|anweisungen|aufgaben)\b[^.?!\n]{0,40}\b(?:irrelevant|nicht|hinter\s+sich|streichen)", 0.85),
    _p("de_new_tasks", r"\bnun\s+folgen\s+(?:neue|weitere)\s+(?:aufgaben|anweisungen)|\bneue\s+aufgabe\s*:|\bkonzentriere\s+dich\s+(?:jetzt\s+)?auf\s+deine\s+neue\s+aufgabe|\bfangen\s+sie\s+von\s+vorne\s+an|\bwir\s+(?:starten|beginnen)\s+(?:von\s+neu|mit\s+einer\s+neuen\s+aufgabe)", 0.8),
    _p("de_act_as", r"\bich\s+möchte,?\s+dass\s+(?:sie|du)\s+als\b[^.?!\n]{0,60}\b(?:fungier|agier|auftr[ie]t|handel|dien)\w*|\bstell\s+dir\s+vor,?\s+du\s+bist\b|\b(?:jetzt|nun)\s+bist\s+du\b|\bdu\s+bist\s+(?:jetzt|nun|keine?)\b|\bin\s+deiner\s+rolle\b|\bbleiben\s+immer\s+in\s+ihren\s+rollen", 0.7),
    _p("de_reveal_prompt", r"\b(?:zeige?|gib|verrate|drucke|wiederhole)\b[^.?!\n]{0,30}\b(?:prompt[\s-]?texte?|systemprompt|anweisungen)\b|\bprompt-texte?\b", 0.85),
    # "Sag mir einfach, wo …" is how people ask: a hint only.
    _p("de_say_only", r"\b(?:sag|sage|schreibe?|gib)\s+(?:mir\s+)?(?:nur|einfach|stattdessen)\b|\bantworte\s+(?:nur|stattdessen)\b", 0.3),
    # --- other languages seen in the wild (Spanish, French, Russian, Croatian); imperatives
    # only: "olvidé mi contraseña" is a forgotten password ---
    _p("other_override", r"\b(?:olvid(?:a|e|en|ad|ate)|tienes\s+que\s+olvidar|oubliez|ignorez|zaboravi)\b[^.?!\n]{0,30}\b(?:todo|todas|instrucciones|toutes|instructions|sve|instrukcije)\b|забудьте\s+все", 0.85),
)


_ANSWER = r"(?:response|reply|answer|message|output|responses|replies|answers)"
_MANIPULATE = (
    r"(?:add|include|integrate|insert|append|prepend|mention|modify|change|alter|enhance|augment|"
    r"introduce|replace|substitute|use|provide|render|encode|encrypt|apply|shift|reverse|write|"
    r"translate|express|convert|scramble|jumble|rearrange|group|combine|remove|misspell|anagram|"
    r"format|end|begin|start|finish|sign|close|respond|reply|answer|display|present|embed|link|"
    r"promote|recommend|suggest|direct|tell|ask|invite|urge|encourage|spread|hint|tease|stress|"
    r"emphasi[sz]e|highlight|invert|output|print|type|put|make|give|offer)"
)
_LANGUAGES = (
    r"(?:english|spanish|french|german|italian|portuguese|russian|chinese|japanese|korean|arabic|"
    r"hindi|dutch|polish|turkish|swedish|greek|hebrew|latin|pig\s+latin|emojis?|base\s?\d\d|morse|"
    r"binary|hex(?:adecimal)?|reverse|uppercase|all\s+caps|leetspeak)"
)

DOCUMENT_PATTERNS: tuple[InjectionPattern, ...] = (
    # A sentence that tells the reader-model to change "your response / reply / answer".
    _p("doc_alter_answer", rf"^\W*(?:(?:please|also|now|then|finally|and)\s+)?(?:can\s+you\s+|could\s+you\s+|you\s+(?:must|should|will)\s+)?{_MANIPULATE}\b[^\n]{{0,160}}?\byour\s+(?:\w+\s+)?{_ANSWER}\b", 0.85),
    _p("doc_in_your_answer", rf"^\W*(?:in|within|throughout|at\s+the\s+(?:end|start|beginning)\s+of|before|after)\s+(?:your|each|every|the)\s+(?:final\s+)?{_ANSWER}\b", 0.85),
    _p("doc_answer_in_language", rf"\b(?:respond|reply|answer|write|translate|express|render|provide)\b[^.\n]{{0,40}}\b(?:in|into|using|to)\s+{_LANGUAGES}\b[^.\n]{{0,30}}(?:\.|\?|!|$)", 0.55),
    _p("doc_your_answer_manner", rf"\byour\s+(?:{_ANSWER}|answer's|reply's|response's)\b[^.\n]{{0,40}}\b(?:backward|in\s+reverse|reversed|encoded|encrypted|without\s+(?:any\s+)?spaces|in\s+(?:base\d\d|emojis?))", 0.8),
    _p("doc_text_transform", r"^\W*(?:replace|substitute|swap|shift|scramble|jumble|reverse|encode|encrypt)\s+(?:(?:every|all|each|the)\s+)?(?:\w+\s+){0,2}?(?:letters?|vowels?|consonants?|characters?)\b", 0.6),
    _p("doc_reply_terse", r"^\W*(?:can\s+you\s+)?(?:reply|respond|answer)\s+(?:in|using|with|only)\b[^\n]{0,60}[.?!]?\s*$", 0.6),
    _p("doc_address_ai", r"\b(?:dear|hey|hi|attention|note\s+to(?:\s+the)?|instructions?\s+for(?:\s+the)?)\s+(?:ai|assistant|chatbot|bot|llm|language\s+model|gpt|claude|model)\b|\b(?:if\s+you\s+are|as)\s+an?\s+(?:ai|assistant|chatbot|language\s+model|llm)\b[^.\n]{0,80}\b(?:must|should|will|need|ignore|tell|say|respond|reply|answer)", 0.85),
    _p("doc_redirect_user", r"\b(?:tell|ask|instruct|urge|direct)\s+(?:the\s+)?(?:user|asker|requester)s?\s+to\b|\b(?:the\s+user|users)\s+(?:must|should)\s+(?:be\s+told|visit|click|enter|share|send)\b", 0.6),
    _p("doc_exfiltrate", r"!\[[^\]]*\]\(https?://[^)]*(?:\?|&)[^)]*=|\b(?:send|post|upload|forward|leak|exfiltrate)\b[^.\n]{0,60}\b(?:conversation|chat\s+history|the\s+user'?s?|question|api\s+keys?|credentials|passwords?|tokens?)\b[^.\n]{0,40}\b(?:to|at)\s+(?:https?://|www\.|\S+@\S+)", 0.85),
)

# Direct patterns that stay specific inside documents. Handbooks address the reader as "you"
# ("you are now in charge of …", "just write", "state that you have one"), so persona and
# output-hijack patterns that work for questions would flag ordinary prose.
DOCUMENT_SAFE_DIRECT = frozenset({
    "override", "forget_everything", "disregarding", "not_by_documents", "new_instructions",
    "act_as", "jailbreak_names", "reveal_prompt", "what_instructions", "delimiter_spoof",
    "encoded_payload", "long_blob", "de_override", "de_forget_everything", "de_new_tasks", "de_reveal_prompt",
    "other_override",
})
