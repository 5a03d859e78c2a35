"""HTML loading: charsets, boilerplate removal, heading paths, tables, hostile nesting."""

from __future__ import annotations

from pathlib import Path

from knowledge.loaders import load_document
from knowledge.types import CorruptDocument
from tests.knowledge.conftest import LIMIT, full_text, load_sample


def test_cp1252_html_decodes_euro_and_accents(samples: Path):
    doc = load_sample(samples, "unstructured-fake-html-cp1252.html")
    text = full_text(doc)
    assert "15,50 €" in text
    assert "El niño comió paella con ñoquis" in text  # cp1250 would give "nińo"
    assert "L'été était très chaud" in text
    assert doc.title == "My First Heading"


def test_html_drops_header_and_footer_and_keeps_heading_path(samples: Path):
    doc = load_sample(samples, "unstructured-fake-html-with-footer-and-header.html")
    text = full_text(doc)
    assert "My first paragraph." in text
    assert "Header" not in text and "Footer" not in text
    assert doc.sections[0].heading_path == ("My First Heading",)


def test_html_uses_title_tag_and_drops_scripts(samples: Path):
    doc = load_sample(samples, "unstructured-ideas-page.html")
    assert doc.title == "How to Get New Ideas"
    text = full_text(doc)
    assert "The way to get new ideas is to notice anomalies" in text
    assert "escape(document.referrer)" not in text


def test_html_meta_charset_is_respected():
    html = '<html><head><meta charset="windows-1251"><title>Тест</title></head><body><p>Привет мир</p></body></html>'
    doc = load_document("ru.html", html.encode("cp1251"), max_bytes=LIMIT)
    assert doc.title == "Тест"
    assert "Привет мир" in full_text(doc)


def test_html_removes_boilerplate_elements_and_keeps_tables_as_rows():
    html = b"""<html><head><title>T</title><style>.x{}</style></head><body>
      <nav>Home | About</nav><header>Site header</header>
      <h1>Main</h1><p>Visible <b>bold</b> text.</p>
      <script>alert('x')</script><noscript>enable js</noscript>
      <form><input value="q">Search</form><aside>Side note</aside><template>tpl</template>
      <svg><text>svg text</text></svg>
      <h2>Prices</h2><table><tr><th>Item</th><th>Price</th></tr><tr><td>Tea</td><td>2</td></tr></table>
      <footer>Site footer</footer></body></html>"""
    doc = load_document("page.html", html, max_bytes=LIMIT)
    text = full_text(doc)
    for gone in ("Home", "Site header", "alert", "enable js", "Search", "Side note", "tpl", "svg text", "Site footer", ".x{}"):
        assert gone not in text
    assert "Visible bold text." in text
    prices = next(s for s in doc.sections if s.heading_path == ("Main", "Prices"))
    assert "Item | Price\nTea | 2" in prices.text


def test_deeply_nested_html_does_not_crash():
    html = b"<div>" * 5000 + b"deep text" + b"</div>" * 5000
    try:
        doc = load_document("deep.html", html, max_bytes=LIMIT)
    except CorruptDocument:
        return  # refusing is acceptable; crashing is not
    assert "deep text" in full_text(doc)
