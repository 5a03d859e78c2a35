"""The terminal connector: `docent chat` and `docent ask`, rendered with Rich.

Like every connector it only turns input into a `Question` and an `Answer` into output.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import asdict
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from bot.types import Answer, Outcome, PriorTurn, Question
from knowledge.types import WORKSPACE_WIDE, Scope

if TYPE_CHECKING:  # the core (models, store) stays unimported when the CLI forwards to a running bot
    from bot.core import Docent


def question_for(scope: Scope, text: str, *, platform: str = "cli", history=()) -> Question:
    channel = None if scope.channel in (None, WORKSPACE_WIDE) else scope.channel
    return Question(
        platform=platform,
        workspace=scope.workspace,
        channel=channel,
        user=getpass.getuser(),
        text=text,
        history=tuple(history),
    )


def answer_json(answer: Answer) -> str:
    data = asdict(answer)
    data.pop("extra", None)
    data["outcome"] = str(answer.outcome)
    return json.dumps(data, indent=2, default=str)


def render_answer(console: Console, answer: Answer) -> None:
    style = "green" if answer.outcome == Outcome.answered else "yellow"
    console.print(Panel(Markdown(answer.text), title=f"docent · {answer.outcome}", border_style=style))
    for notice in answer.notices:
        console.print(f"[yellow]note:[/] {notice}")
    if answer.sources:
        table = Table(show_header=True, header_style="bold", box=None)
        table.add_column("#", justify="right")
        table.add_column("source")
        table.add_column("where")
        for s in answer.sources:
            where = ", ".join(x for x in (f"p. {s.page}" if s.page else "", s.section) if x)
            table.add_row(f"[{s.n}]", s.title + (f"  {s.url}" if s.url else ""), where)
        console.print(table)
    if answer.related:
        console.print("[bold]Related, not an answer:[/]")
        for s in answer.related:
            console.print(f"  • {escape(s.label)}{f'  {escape(s.url)}' if s.url else ''}", highlight=False)
            console.print(f"    [dim]{escape(s.snippet)}[/]", highlight=False)
    u = answer.usage
    console.print(
        f"[dim]{u.model} · {u.input_tokens} in / {u.output_tokens} out · ${u.cost_usd:.5f} · "
        f"{u.latency_ms:.0f} ms{' · cached' if u.cache_hit else ''}[/]"
    )


def ask_streaming(docent: "Docent", console: Console, q: Question) -> Answer:
    """Ask, showing the answer as it streams in (a live Markdown view), then the final render."""
    with Live(console=console, refresh_per_second=8, transient=True) as live:
        answer = docent.ask(q, on_delta=lambda text: live.update(Markdown(text)))
    render_answer(console, answer)
    return answer


def chat(docent: "Docent", scope: Scope, console: Console | None = None) -> None:
    """An interactive terminal chat; earlier turns are passed as thread history."""
    console = console or Console()
    console.print(f"[bold]docent[/] — asking the documents in scope [cyan]{scope}[/]. Empty line or Ctrl-D to quit.")
    history: list[PriorTurn] = []
    while True:
        try:
            text = console.input("[bold cyan]you ›[/] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not text:
            break
        answer = ask_streaming(docent, console, question_for(scope, text, platform="console", history=history))
        history += [PriorTurn("user", text, to_docent=True), PriorTurn("assistant", answer.text, is_bot=True)]
        history = history[-10:]
