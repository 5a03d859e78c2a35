"""The terminal renderer: answers with their sources, abstentions with the related passages."""

from __future__ import annotations

from rich.console import Console

from bot.types import Answer, Outcome, Source, Usage
from connectors.console import render_answer


def _source(n: int, title: str, snippet: str, **kw) -> Source:
    return Source(n=n, doc_id=f"d{n}", title=title, source=f"{title}.md", page=kw.get("page"),
                  section=kw.get("section", ""), snippet=snippet, url=kw.get("url"))


def _rendered(answer: Answer) -> str:
    console = Console(record=True, width=120, color_system=None)
    render_answer(console, answer)
    return console.export_text()


def test_an_abstention_lists_the_related_passages_as_not_an_answer():
    related = (
        _source(1, "Handbook", "Employees accrue 20 vacation days per year.", page=4, section="Leave"),
        _source(2, "Travel [draft]", "Hotels are reimbursed up to 180 dollars.", url="https://docs.example/travel"),
    )
    out = _rendered(Answer(text="I couldn't find this.", sources=(), outcome=Outcome.abstained,
                           usage=Usage(model="none"), related=related))
    assert "Related, not an answer:" in out
    assert "• Handbook (p. 4, Leave)" in out and "Employees accrue 20 vacation days per year." in out
    assert "• Travel [draft]  https://docs.example/travel" in out  # markup-looking titles print as written
    assert out.index("Related, not an answer:") < out.index("Hotels are reimbursed")


def test_an_answer_without_related_passages_has_no_related_section():
    out = _rendered(Answer(text="Vacation is 20 days [1].", sources=(_source(1, "Handbook", "…"),),
                           outcome=Outcome.answered, usage=Usage(model="extractive")))
    assert "Related" not in out and "[1]" in out
