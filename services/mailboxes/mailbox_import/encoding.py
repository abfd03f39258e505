"""Reading an import's bytes as text, in this order.

1. A byte-order mark (UTF-8, UTF-16 little- or big-endian) decides.
2. UTF-8, if the whole file is valid UTF-8.
3. UTF-16 without a mark, recognised by its NUL bytes: mostly-ASCII text has one in every other byte.
4. charset-normalizer's guess among the code pages spreadsheets save "CSV" in (Excel on Windows
   writes Windows-1252 in Western Europe and the Americas), ties going to Windows-1252 and Latin-1.
   The guess looks at a bounded window of the file that starts at the first line that is not UTF-8,
   so a 20 MiB file costs no more than a small one.

A binary file (a workbook, a PDF, an image) is refused. The preview says which encoding was used, so
a wrong guess shows in the names before anything is stored.
"""

from __future__ import annotations

from typing import NamedTuple

from charset_normalizer import from_bytes

SAMPLE_BYTES = 64 * 1024
WESTERN_ENCODINGS = ("cp1252", "latin_1", "iso8859_15")
GUESSED_ENCODINGS = WESTERN_ENCODINGS + (
    "cp1250", "cp1251", "cp1253", "cp1254", "cp1257", "mac_roman", "cp932", "gb18030", "big5", "cp949",
)
UNICODE_ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be")
ENCODING_LABELS = {
    "utf-8": "UTF-8", "utf-8-sig": "UTF-8 (with a byte-order mark)", "utf-16": "UTF-16 (with a byte-order mark)",
    "utf-16-le": "UTF-16 little-endian (without a byte-order mark)",
    "utf-16-be": "UTF-16 big-endian (without a byte-order mark)",
    "cp1252": "Windows-1252 (Western European)", "latin_1": "Latin-1 (ISO 8859-1)",
    "iso8859_15": "Latin-9 (ISO 8859-15)", "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)", "cp1253": "Windows-1253 (Greek)", "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)", "mac_roman": "Mac OS Roman", "cp932": "Shift JIS (Windows-932, Japanese)",
    "gb18030": "GB 18030 (Chinese)", "big5": "Big5 (Traditional Chinese)", "cp949": "Windows-949 (Korean)",
}
SAVE_AS = 'Save the list as "CSV UTF-8" and upload that file.'
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive or an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
)
_WORKBOOK_SAVE_AS = 'Open it in Excel and save it as CSV (File > Save As > "CSV UTF-8"), then upload the .csv file.'


class ImportFileError(ValueError):
    """The file cannot be imported at all; the message says why and what to do."""


class Decoded(NamedTuple):
    """The text of a file and the codec it was read with (a Python codec name)."""

    text: str
    encoding: str


def decode(data: bytes) -> Decoded:
    """Return the text of data and the encoding it was read with; :raises ImportFileError: if it is not text."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return _decoded_as(data, codec)
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            advice = _WORKBOOK_SAVE_AS if "Excel" in what else SAVE_AS
            raise ImportFileError(f"This is {what}, not a CSV text file. {advice}")
    if b"\x00" in data:
        order = utf16_byte_order(data)
        if order is None:
            raise _binary(data.count(b"\n", 0, data.index(b"\x00")) + 1)
        return _decoded_as(data, order)
    try:
        return Decoded(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        return _guessed(data, exc.start)


def encoding_label(encoding: str) -> str:
    """Name a codec for people: "Windows-1252 (Western European)", "UTF-8"."""
    return ENCODING_LABELS.get(encoding) or encoding.upper().replace("_", "-")


def utf16_byte_order(data: bytes) -> str | None:
    """Return utf-16-le or utf-16-be if data's NUL bytes fall on one side of its byte pairs, else None."""
    sample = data[: min(len(data), SAMPLE_BYTES) // 2 * 2]
    pairs = len(sample) // 2
    if not pairs:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    # ASCII characters (the addresses, the delimiters) have a NUL high byte; other characters rarely do.
    if odd >= pairs / 2 and even <= pairs / 50:
        return "utf-16-le"
    if even >= pairs / 2 and odd <= pairs / 50:
        return "utf-16-be"
    return None


def guess_encoding(sample: bytes) -> str | None:
    """Return charset-normalizer's best codec for sample, Windows-1252 or Latin-1 if they read it as well."""
    matches = from_bytes(sample, cp_isolation=list(GUESSED_ENCODINGS))
    best = matches.best()
    if best is None:
        return None
    # A short list gives the detector little to go on: several code pages then read it equally well.
    as_good = set(best.could_be_from_charset) | {
        match.encoding for match in matches
        if match.chaos <= best.chaos + 0.01 and match.coherence >= best.coherence - 0.01
    }
    return next((codec for codec in WESTERN_ENCODINGS if codec in as_good), best.encoding)


def _decoded_as(data: bytes, codec: str) -> Decoded:
    """Decode all of data with the codec its byte-order mark or NUL pattern chose."""
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        raise ImportFileError(
            f"The file looks like {encoding_label(codec)} text but is damaged or cut short: it cannot be read "
            f"as that. {SAVE_AS}"
        ) from None
    if "\x00" in text:
        raise _binary(text.count("\n", 0, text.index("\x00")) + 1)
    return Decoded(text, codec)


def _guessed(data: bytes, start: int) -> Decoded:
    """Decode data with the encoding guessed from the lines that start at its first non-UTF-8 byte."""
    line_start = data.rfind(b"\n", 0, start) + 1
    window = data[line_start: line_start + SAMPLE_BYTES]
    if line_start + SAMPLE_BYTES < len(data):
        window = window[: window.rfind(b"\n") + 1] or window  # whole lines: no character cut in two
    codec = guess_encoding(window)
    if codec is None:
        raise ImportFileError(
            f"The file is not UTF-8 text and its encoding could not be recognised: line {_line_of(data, start)} "
            f"contains the byte 0x{data[start]:02X}. {SAVE_AS}"
        )
    try:
        return Decoded(data.decode(codec), codec)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"The file is not UTF-8 text. It reads as {encoding_label(codec)} from line {_line_of(data, start)}, "
            f"but line {_line_of(data, exc.start)} contains the byte 0x{data[exc.start]:02X}, which is not "
            f"{encoding_label(codec)} either (were parts of it saved in different encodings?). {SAVE_AS}"
        ) from None


def _line_of(data: bytes, position: int) -> int:
    return data.count(b"\n", 0, position) + 1


def _binary(line: int) -> ImportFileError:
    return ImportFileError(f"This looks like a binary file, not CSV text: line {line} contains a NUL byte. {SAVE_AS}")
