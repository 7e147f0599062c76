"""The streamed workbook: a real XLSX that openpyxl reads back cell for cell, whatever
the text holds (markup, ampersands, Chinese, characters XML cannot carry)."""

import io
from collections.abc import AsyncIterator, Sequence

from openpyxl import load_workbook

from app.core import xlsx


async def _pages(pages: list[list[list[str]]]) -> AsyncIterator[Sequence[Sequence[str]]]:
    for page in pages:
        yield page


async def test_a_workbook_reads_back_as_written() -> None:
    header = ["name", "note", "amount"]
    pages = [
        [["杭州智语科技", "a <b> & 'c' \"d\"", "1,234.50"], ["", "tab\there\nnewline", "0.00"]],
        [],
        [["bell\x07 and \x00nul", "]]> ends CDATA", "  spaced  "]],
    ]
    chunks = [chunk async for chunk in xlsx.stream("claims & co", header, _pages(pages))]
    # The workbook's first parts go before any row is read (deflate keeps back a
    # page's few bytes until it has more: a year's export sends as it goes).
    assert len(chunks) >= 2
    assert chunks[0].startswith(b"PK\x03\x04")
    book = load_workbook(io.BytesIO(b"".join(chunks)), read_only=True)
    assert book.sheetnames == ["claims & co"]
    rows = [[c or "" for c in row] for row in book["claims & co"].iter_rows(values_only=True)]
    assert rows == [
        header,
        ["杭州智语科技", "a <b> & 'c' \"d\"", "1,234.50"],
        ["", "tab\there\nnewline", "0.00"],
        # What XML 1.0 cannot carry is left out; the rest stays as it was.
        ["bell and nul", "]]> ends CDATA", "  spaced  "],
    ]
