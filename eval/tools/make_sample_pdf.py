"""Write knowledge/samples/travel-policy.pdf, the demo's PDF sample.

A tiny hand-rolled PDF writer (standard Helvetica fonts, one text stream per page, bookmarks,
document title) so the sample needs no extra dependency and the output is byte-for-byte
reproducible. Text is plain ASCII and set with `T*` line breaks, which pypdf extracts as
clean lines. Run from the repository root:

    python eval/tools/make_sample_pdf.py            # writes the PDF
    python eval/tools/make_sample_pdf.py --check    # and prints what pypdf reads back
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "knowledge" / "samples" / "travel-policy.pdf"
TITLE = "Northwind Labs Travel Policy"

PAGE_W, PAGE_H = 612, 792  # US Letter, points
MARGIN_X, TOP, BOTTOM = 72, 720, 90
BODY_SIZE, BODY_LEADING, WRAP = 10.5, 15, 88

# (kind, text). "h" starts a section (and a bookmark); "break" forces a new page so the
# sections land on known pages for the demo's page citations.
CONTENT: list[tuple[str, str]] = [
    ("title", TITLE),
    ("p", "Version 2.1, effective 1 February 2026. Owner: Finance (finance@northwindlabs.example)."),
    ("p", "This policy covers business travel by Northwind Labs employees and contractors: how "
          "trips are approved and booked, what we pay for, and how to stay safe on the road. "
          "Book sensibly, travel safely, and ask Finance when a situation is not covered here."),
    ("h", "1. Approval and booking"),
    ("li", "Every trip needs your manager's approval in the Ledger app before anything is booked."),
    ("li", "International trips also need approval from your department's vice president, "
           "requested at least 3 weeks before departure."),
    ("li", "Book flights, trains and hotels through the TripDesk portal so that we know where "
           "travellers are in an emergency. Bookings made elsewhere are reimbursed only if they "
           "were cheaper than the TripDesk price on the same day."),
    ("li", "Book flights at least 14 days ahead whenever the trip is known that early."),
    ("h", "2. Flights"),
    ("li", "Fly economy class on flights shorter than 6 hours."),
    ("li", "For a single flight of 6 hours or more, you may book premium economy."),
    ("li", "Business class is allowed only with the CFO's written approval, for example for a "
           "documented medical need. Upgrades paid with your own miles are always fine."),
    ("li", "One checked bag per trip is reimbursed. Seat selection fees are reimbursed on "
           "flights of 4 hours or more."),
    ("break", ""),
    ("h", "3. Hotels"),
    ("li", "The nightly hotel limit, before taxes, is $220 in most cities."),
    ("li", "In New York, San Francisco, London and Tokyo the limit is $300 per night."),
    ("li", "Short-term rental apartments are allowed when they cost less than a comparable hotel "
           "and the host provides an invoice in the company's name."),
    ("li", "If a conference hotel costs more than the limit, ask your manager before booking; "
           "approved exceptions are noted in Ledger."),
    ("h", "4. Meals and daily allowance"),
    ("li", "Travellers receive a daily meal allowance of $75 on domestic trips and $90 on "
           "international trips. No meal receipts are needed for the allowance."),
    ("li", "On the first and last day of a trip the allowance is 75 percent of the daily amount."),
    ("li", "Meals already provided, such as a conference lunch, are not claimed again. Client "
           "meals follow the expense rules in the Employee Handbook instead."),
    ("h", "5. Getting around"),
    ("li", "Prefer trains and public transport where they are practical."),
    ("li", "Taxis and ride-hailing are reimbursed for airport transfers, for trips after 21:00, "
           "and when carrying heavy equipment."),
    ("li", "Rental cars need your manager's approval in advance; choose a compact car. Using "
           "your own car is reimbursed at $0.67 per mile."),
    ("break", ""),
    ("h", "6. Safety and insurance"),
    ("li", "All travellers are covered by the company travel insurance, including medical care "
           "abroad. The 24-hour assistance number is printed on the insurance card you receive "
           "with your laptop and is pinned in the #travel channel."),
    ("li", "Keep your laptop in your carry-on bag, never in checked luggage, and use the company "
           "VPN on hotel and airport Wi-Fi. Report a lost or stolen device as described in the "
           "Security Policy."),
    ("li", "If a trip is disrupted by a strike, storm or unrest, your safety comes first: "
           "reasonable extra costs for hotels or rebooking are reimbursed."),
    ("h", "7. After the trip"),
    ("li", "Claim travel costs and the daily allowance in Ledger, following the deadlines and "
           "receipt rules in the Employee Handbook's expenses section."),
    ("li", "Attach the TripDesk itinerary to the claim; Finance uses it to check dates and the "
           "allowance."),
    ("li", "Unused tickets and cancelled hotel nights must be cancelled as soon as plans change. "
           "Fees caused by a late cancellation without a work reason are not reimbursed."),
]


@dataclass
class Page:
    ops: list[str]
    bookmarks: list[tuple[str, int]]  # (title, y position)


def _pdf_string(text: str) -> str:
    text.encode("ascii")  # the samples are plain ASCII: WinAnsi maps it one-to-one
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def layout(content: list[tuple[str, str]]) -> list[Page]:
    pages: list[Page] = []
    page = Page([], [])
    y = TOP

    def new_page() -> None:
        nonlocal page, y
        pages.append(page)
        page, y = Page([], []), TOP

    def line(text: str, font: str, size: float, x: float, advance: float) -> None:
        nonlocal y
        if y < BOTTOM:
            new_page()
        page.ops.append(f"BT /{font} {size} Tf {x} {y} Td {_pdf_string(text)} Tj ET")
        y -= advance

    for kind, text in content:
        if kind == "break":
            new_page()
        elif kind == "title":
            line(text, "F2", 20, MARGIN_X, 32)
        elif kind == "h":
            if y < BOTTOM + 60:  # keep a heading with its first lines
                new_page()
            y -= 8
            page.bookmarks.append((text, y + 14))
            line(text, "F2", 13, MARGIN_X, 20)
        elif kind == "p":
            for part in textwrap.wrap(text, WRAP):
                line(part, "F1", BODY_SIZE, MARGIN_X, BODY_LEADING)
            y -= 6
        elif kind == "li":
            for i, part in enumerate(textwrap.wrap(text, WRAP - 4)):
                line(("- " if i == 0 else "  ") + part, "F1", BODY_SIZE, MARGIN_X + 6, BODY_LEADING)
            y -= 3
    pages.append(page)
    return pages


def build_pdf(pages: list[Page]) -> bytes:
    n = len(pages)
    # Object numbers: 1 catalog, 2 page tree, 3-4 fonts, 5 info, 6 outline root,
    # then per page (page, contents), then one object per bookmark.
    page_ids = [7 + 2 * i for i in range(n)]
    first_bm = 7 + 2 * n
    marks = [(title, i, y) for i, p in enumerate(pages) for title, y in p.bookmarks]
    bm_ids = [first_bm + k for k in range(len(marks))]

    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R /Outlines 6 0 R /PageMode /UseOutlines >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{p} 0 R' for p in page_ids)}] /Count {n} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        5: (f"<< /Title {_pdf_string(TITLE)} /Author (Northwind Labs Finance) "
            f"/Subject (Business travel rules) /Producer (docent eval/tools/make_sample_pdf.py) "
            f"/CreationDate (D:20260201090000Z) >>").encode(),
        6: (f"<< /Type /Outlines /First {bm_ids[0]} 0 R /Last {bm_ids[-1]} 0 R "
            f"/Count {len(bm_ids)} >>").encode(),
    }
    for i, page in enumerate(pages):
        footer = f"BT /F1 9 Tf {MARGIN_X} 50 Td {_pdf_string(f'{TITLE} - page {i + 1} of {n}')} Tj ET"
        stream = "\n".join(page.ops + [footer]).encode()
        objects[page_ids[i]] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>"
        ).encode()
        objects[page_ids[i] + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    for k, (title, page_index, y) in enumerate(marks):
        links = ""
        if k > 0:
            links += f" /Prev {bm_ids[k - 1]} 0 R"
        if k < len(marks) - 1:
            links += f" /Next {bm_ids[k + 1]} 0 R"
        objects[bm_ids[k]] = (
            f"<< /Title {_pdf_string(title)} /Parent 6 0 R{links} "
            f"/Dest [{page_ids[page_index]} 0 R /XYZ 0 {y} 0] >>"
        ).encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    xref_at = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num]
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 5 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref_at)
    return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="print the text pypdf extracts")
    args = parser.parse_args()
    data = build_pdf(layout(CONTENT))
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data)} bytes)")
    if args.check:
        import pypdf

        reader = pypdf.PdfReader(OUT)
        print("title:", reader.metadata.title)
        print("outline:", [(o.title, reader.get_destination_page_number(o) + 1) for o in reader.outline])
        for i, page in enumerate(reader.pages, 1):
            print(f"--- page {i}\n{page.extract_text()}")


if __name__ == "__main__":
    main()
