"""Reading an uploaded or pasted mailbox list into rows, with a clear message for every bad file.

The bytes become text in `encoding` (which says how). Then the first record is a header naming the
columns, or already a row (email, name, kind, group in that order). A header naming a column twice
refuses the whole file, since which of the two to import is unclear; a non-empty cell beyond the
columns makes its row a problem (usually an unquoted comma in a name), while the empty cells that
spreadsheets pad rows with do not.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from services.mailboxes.mailbox_import.encoding import ImportFileError, decode
from services.platform.wording import plural

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


class RawRow(NamedTuple):
    """One data row as written in the file; `row_number` counts records, the header being row 1.

    `problem` says why the row cannot be imported as written (cells beyond the header's columns).
    """

    row_number: int
    email: str
    name: str = ""
    kind: str = ""
    group: str = ""
    problem: str = ""


@dataclass
class ParsedList:
    """The rows of a list and what was understood about its layout."""

    rows: list[RawRow]
    delimiter: str
    has_header: bool
    columns: tuple[str, ...]
    ignored_columns: tuple[str, ...] = field(default_factory=tuple)
    encoding: str = "utf-8"

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
    text, encoding = decode(data)
    if not text.strip():
        raise ImportFileError("The file is empty: there are no rows to import.")
    delimiter = detect_delimiter(text)
    records = _records(text, delimiter)
    first = next(records, None)
    if first is None:
        raise ImportFileError("The file is empty: there are no rows to import.")
    columns, ignored, has_header = _layout(first[1])
    make_row = _row_maker(columns, has_header, delimiter)
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
    return ParsedList(rows, delimiter, has_header, columns, ignored, encoding)


def format_size(size: int) -> str:
    """Render a byte count for people: 512 bytes, 20 KiB, 20.5 MiB."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MiB"


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
    """Return (column per position, ignored header names, whether the first record is a header).

    :raises ImportFileError: if the header names one column twice (which of the two to import is unclear).
    """
    keys = [_header_key(cell) for cell in cells]
    if "email" not in [_ALIAS_TO_COLUMN.get(key) for key in keys]:
        if "@" in cells[0]:
            return POSITIONAL, (), False
        raise ImportFileError(
            "The first row must be a header naming an email column (accepted names: email, e-mail, mail), "
            "or every row must start with an email address. The first row is: " + _shorten(", ".join(cells))
        )
    columns, first_at, ignored = [], {}, []
    for position, key in enumerate(keys):
        column = _ALIAS_TO_COLUMN.get(key)
        if column in first_at:
            raise _named_twice(column, cells, first_at[column], position)
        if column is None:
            ignored.append(cells[position].strip() or "(blank)")
        else:
            first_at[column] = position
        columns.append(column or "")
    return tuple(columns), tuple(ignored), True


def _named_twice(column: str, cells: list[str], first: int, second: int) -> ImportFileError:
    where = " and ".join(
        f'column {i + 1} ({column_letter(i)}) is "{_shorten(cells[i].strip(), 40)}"' for i in (first, second)
    )
    return ImportFileError(
        f"The header names the {column} column twice: {where}. Only one column can hold the {column}: "
        "delete or rename the other one, then upload the file again."
    )


def _header_key(cell: str) -> str:
    return " ".join(cell.strip().lower().replace("_", " ").split())


def column_letter(position: int) -> str:
    """Return the spreadsheet name of a 0-based column position: A, B, …, Z, AA."""
    letters = ""
    position += 1
    while position:
        position, remainder = divmod(position - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _row_maker(columns: tuple[str, ...], has_header: bool, delimiter: str):
    """Return a function turning (row_number, cells) into a RawRow, for this file's column order."""
    positions = [columns.index(name) if name in columns else None for name in POSITIONAL]
    width = len(columns)

    def make(number: int, cells: list[str]) -> RawRow:
        values = [cells[i] if i is not None and i < len(cells) else "" for i in positions]
        # Spreadsheets pad rows with empty cells; only a cell with something in it is left without a column.
        if len(cells) > width and any(cell.strip() for cell in cells[width:]):
            return RawRow(number, *values, problem=_extra_cells(cells, width, has_header, delimiter))
        return RawRow(number, *values)

    return make


def _extra_cells(cells: list[str], width: int, has_header: bool, delimiter: str) -> str:
    """Say which cells of a row are beyond the columns, and how to fix the row."""
    extra = [(i, cell.strip()) for i, cell in enumerate(cells) if i >= width and cell.strip()]
    shown = ", ".join(f'{column_letter(i)} ("{_shorten(cell, 40)}")' for i, cell in extra[:3])
    more = f" and {len(extra) - 3} more" if len(extra) > 3 else ""
    if has_header:
        limit = f"the header names {plural(width, 'column')}"
        remedy = "delete the extra cells or give them a header"
    else:
        limit = f"a list without a header has at most {width} columns ({', '.join(POSITIONAL)})"
        remedy = "delete the extra cells"
    return (
        f"this row has {plural(len(cells), 'cell')} but {limit}, so {plural(len(extra), 'column', with_count=False)} "
        f"{shown}{more} "
        f"would be lost. If a cell itself contains a {DELIMITER_NAMES[delimiter]}, put that cell in double quotes; "
        f"otherwise {remedy}."
    )


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
