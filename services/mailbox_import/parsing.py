"""Reading an uploaded or pasted mailbox list into rows, with a clear message for every bad file.

Encoding: UTF-8, with or without a byte-order mark. Anything else is refused with the line of the
first byte that is not UTF-8, rather than guessed: a cp1252 guess silently turns the UTF-8 of
another program into mojibake addresses, and an admin can always re-save as "CSV UTF-8".
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import NamedTuple

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
COLUMN_ALIASES = {
    "email": ("email", "e-mail", "mail", "email address", "e-mail address", "emailaddress"),
    "name": ("name", "display name", "displayname", "full name"),
    "kind": ("kind", "type", "mailbox type"),
    "group": ("group", "group name", "groupname"),
}
POSITIONAL = ("email", "name", "kind", "group")
_ALIAS_TO_COLUMN = {alias: column for column, aliases in COLUMN_ALIASES.items() for alias in aliases}
_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SAVE_AS = 'Save the list as "CSV UTF-8" and upload that file.'


class ImportFileError(ValueError):
    """The file cannot be imported at all; the message says why and what to do."""


class RawRow(NamedTuple):
    """One data row as written in the file; `row_number` counts records, the header being row 1."""

    row_number: int
    email: str
    name: str = ""
    kind: str = ""
    group: str = ""


@dataclass
class ParsedList:
    """The rows of a list and what was understood about its layout."""

    rows: list[RawRow]
    delimiter: str
    has_header: bool
    columns: tuple[str, ...]
    ignored_columns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def delimiter_name(self) -> str:
        """Return the delimiter's name for the preview (comma, semicolon, tab)."""
        return DELIMITER_NAMES[self.delimiter]


def parse_list(data: bytes, *, max_bytes: int, max_rows: int) -> ParsedList:
    """Parse a CSV file or pasted list; :raises ImportFileError: when nothing in it can be imported."""
    if len(data) > max_bytes:
        raise ImportFileError(
            f"The file is {format_size(len(data))}; the limit is {format_size(max_bytes)} "
            f"(and {max_rows:,} rows). Split the list into smaller files."
        )
    text = decode(data)
    if not text.strip():
        raise ImportFileError("The file is empty: there are no rows to import.")
    delimiter = detect_delimiter(text)
    records = _records(text, delimiter)
    first = next(records, None)
    if first is None:
        raise ImportFileError("The file is empty: there are no rows to import.")
    columns, ignored, has_header = _layout(first[1])
    make_row = _row_maker(columns)
    rows = [] if has_header else [make_row(first[0], first[1])]
    for number, cells in records:
        if len(rows) >= max_rows:
            raise ImportFileError(
                f"The file has more than {max_rows:,} rows; the limit is {max_rows:,}. Split the list into "
                "several files and import them one after the other (use the 'add' mode for all but one)."
            )
        rows.append(make_row(number, cells))
    if not rows:
        raise ImportFileError("The file has a header row but no mailboxes below it.")
    return ParsedList(rows, delimiter, has_header, columns, ignored)


def format_size(size: int) -> str:
    """Render a byte count for people: 512 bytes, 20 KiB, 20.5 MiB."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MiB"


def decode(data: bytes) -> str:
    """Return the text of UTF-8 data (a BOM is dropped); :raises ImportFileError: for anything else."""
    if data.startswith(_UTF16_BOMS):
        raise ImportFileError(f"The file is saved as UTF-16 text, not UTF-8. {_SAVE_AS}")
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            raise ImportFileError(f"This is {what}, not a CSV text file. {_SAVE_AS}")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise ImportFileError(
            f"This looks like a binary file, not CSV text: line {line} contains a NUL byte. {_SAVE_AS}"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ImportFileError(
            f"The file is not UTF-8 text: line {line} contains the byte 0x{data[exc.start]:02X}, which is not "
            f"valid UTF-8 (the file was probably saved as Windows-1252 or Latin-1). {_SAVE_AS}"
        ) from None


def detect_delimiter(text: str) -> str:
    """Return the delimiter of the first non-blank line: the most frequent of comma, semicolon and tab."""
    start = len(text) - len(text.lstrip())
    line = text[start:].partition("\n")[0]
    line = re.sub(r'"[^"]*"', "", line)  # a quoted cell's commas do not count
    counts = {delimiter: line.count(delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _records(text: str, delimiter: str):
    """Yield (row_number, cells) for every non-blank record; quoted cells may hold delimiters and newlines."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for number, cells in enumerate(reader, start=1):
            if "".join(cells).strip():
                yield number, cells
    except csv.Error as exc:
        raise ImportFileError(
            f"The file is not valid CSV near line {reader.line_num}: {_csv_problem(exc)}. "
            "Check the quotes on that line."
        ) from None


def _csv_problem(exc: csv.Error) -> str:
    message = str(exc)
    if "unexpected end of data" in message:
        return "a quoted cell is never closed"
    if "expected after" in message:
        return "a closing quote is followed by more text in the same cell"
    if "field larger than field limit" in message:
        return "a cell is far too long (an unbalanced quote?)"
    return message


def _layout(cells: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """Return (column per position, ignored header names, whether the first record is a header)."""
    keys = [_header_key(cell) for cell in cells]
    if "email" not in [_ALIAS_TO_COLUMN.get(key) for key in keys]:
        if "@" in cells[0]:
            return POSITIONAL, (), False
        raise ImportFileError(
            "The first row must be a header naming an email column (accepted names: email, e-mail, mail), "
            "or every row must start with an email address. The first row is: " + _shorten(", ".join(cells))
        )
    columns, seen, ignored = [], set(), []
    for cell, key in zip(cells, keys, strict=True):
        column = _ALIAS_TO_COLUMN.get(key)
        if column is None or column in seen:
            ignored.append(cell.strip() or "(blank)")
            column = ""
        seen.add(column)
        columns.append(column)
    return tuple(columns), tuple(ignored), True


def _header_key(cell: str) -> str:
    return " ".join(cell.strip().lower().replace("_", " ").split())


def _row_maker(columns: tuple[str, ...]):
    """Return a function turning (row_number, cells) into a RawRow, for this file's column order."""
    positions = [columns.index(name) if name in columns else None for name in POSITIONAL]

    def make(number: int, cells: list[str]) -> RawRow:
        width = len(cells)
        return RawRow(number, *(cells[i] if i is not None and i < width else "" for i in positions))

    return make


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
