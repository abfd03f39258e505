"""Parsing and normalizing imported mailbox lists: the bad-input zoo, byte by byte."""

from __future__ import annotations

import pytest

from services.mailboxes.mailbox_import.normalize import (
    AddressError,
    address_key,
    domain_matches,
    normalize_address,
    normalize_kind,
    normalize_text,
)
from services.mailboxes.mailbox_import.encoding import encoding_label
from services.mailboxes.mailbox_import.parsing import ImportFileError, format_size, parse_list

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_rows": 100_000}


def parse(data: bytes, **limits):
    return parse_list(data, **{**LIMITS, **limits})


def emails(parsed) -> list[str]:
    return [row.email for row in parsed.rows]


@pytest.mark.parametrize("data", [b"", b"   \n\r\n  \n", "\ufeff".encode()])
def test_an_empty_file_is_refused_with_a_clear_message(data):
    with pytest.raises(ImportFileError, match="The file is empty"):
        parse(data)


def test_a_header_without_rows_is_refused():
    with pytest.raises(ImportFileError, match="header row but no mailboxes"):
        parse(b"email,name,kind,group\n\n")


def test_header_columns_are_recognized_by_their_aliases_in_any_order():
    parsed = parse(b"Group;Type;E-Mail;Display Name\nPilot;shared;ops@acme.example;Operations\n")
    assert parsed.has_header and parsed.delimiter_name == "semicolon"
    row = parsed.rows[0]
    assert (row.row_number, row.email, row.name, row.kind, row.group) == (2, "ops@acme.example", "Operations", "shared", "Pilot")


def test_unknown_header_columns_are_ignored_and_reported():
    parsed = parse(b"mail,department,name\nann@acme.example,Sales,Ann\n")
    assert parsed.ignored_columns == ("department",)
    assert (parsed.rows[0].email, parsed.rows[0].name, parsed.rows[0].group) == ("ann@acme.example", "Ann", "")


def test_a_list_without_header_takes_columns_in_order():
    parsed = parse(b"ann@acme.example\nbob@acme.example,Bob,shared,Ops\n")
    assert not parsed.has_header
    assert [(r.row_number, r.email, r.name, r.kind, r.group) for r in parsed.rows] == [
        (1, "ann@acme.example", "", "", ""), (2, "bob@acme.example", "Bob", "shared", "Ops"),
    ]


def test_a_first_row_that_is_neither_header_nor_address_is_refused():
    with pytest.raises(ImportFileError, match="header naming an email column.*first row is: Name, Department"):
        parse(b"Name,Department\nAnn,Sales\n")


def test_utf8_with_bom_is_read_and_the_bom_does_not_spoil_the_header():
    parsed = parse("\ufeffemail,name\njörg@bücher.example,Jörg\n".encode())
    assert parsed.has_header and emails(parsed) == ["jörg@bücher.example"] and parsed.rows[0].name == "Jörg"


def test_tab_separated_lists_are_detected():
    assert parse(b"email\tname\nann@acme.example\tAnn, Lee\n").rows[0].name == "Ann, Lee"


def test_quoted_commas_and_newlines_stay_in_their_cell_and_rows_count_records():
    data = b'email,name,group\nann@acme.example,"Lee, Ann","Sales\nEMEA"\nbob@acme.example,Bob,\n'
    parsed = parse(data)
    assert [(r.row_number, r.name, r.group) for r in parsed.rows] == [(2, "Lee, Ann", "Sales\nEMEA"), (3, "Bob", "")]


def test_a_quoted_header_with_commas_does_not_fool_delimiter_detection():
    parsed = parse(b'"email";"name, full"\nann@acme.example;"Lee, Ann"\n')
    assert parsed.delimiter_name == "semicolon" and parsed.rows[0].email == "ann@acme.example"


def test_an_unclosed_quote_is_refused_with_its_line():
    with pytest.raises(ImportFileError, match=r"not valid CSV near line \d+: a quoted cell is never closed"):
        parse(b'email,name\nann@acme.example,"Ann\nbob@acme.example,Bob\n')


# --- cells and columns ----------------------------------------------------------------------------


def test_a_header_naming_a_column_twice_is_refused_naming_both_positions():
    with pytest.raises(ImportFileError) as caught:
        parse(b"email,email,name\nann@acme.example,ann@globex.example,Ann\n")
    message = str(caught.value)
    assert "names the email column twice" in message
    assert 'column 1 (A) is "email" and column 2 (B) is "email"' in message and "delete or rename" in message


def test_two_aliases_of_one_column_count_as_naming_it_twice():
    expected = r'name column twice: column 2 \(B\) is "Name" and column 4 \(D\) is "Display Name"'
    with pytest.raises(ImportFileError, match=expected):
        parse(b"email,Name,group,Display Name\nann@acme.example,Ann,Pilot,Ann Lee\n")


def test_a_row_with_non_empty_cells_beyond_the_header_is_a_problem_saying_how_to_fix_it():
    parsed = parse(b"email,name\nann@acme.example,Lee, Ann\nbob@acme.example,Bob\n")
    ann, bob = parsed.rows
    assert ann.problem == (
        'this row has 3 cells but the header names 2 columns, so column C ("Ann") would be lost. If a cell itself '
        "contains a comma, put that cell in double quotes; otherwise delete the extra cells or give them a header."
    )
    assert (ann.row_number, ann.email) == (2, "ann@acme.example") and bob.problem == ""


def test_empty_cells_that_spreadsheets_add_after_the_last_column_are_not_a_problem():
    parsed = parse(b"email,name\nann@acme.example,Ann,,\nbob@acme.example,Bob, ,\t\n")
    assert [(row.name, row.problem) for row in parsed.rows] == [("Ann", ""), ("Bob", "")]


def test_a_list_without_header_takes_at_most_four_cells_a_row():
    parsed = parse(b"ann@acme.example,Ann,user,Pilot,,\nbob@acme.example,Bob,user,Pilot,x,,y\n")
    assert parsed.rows[0].problem == ""
    assert parsed.rows[1].problem.startswith(
        'this row has 7 cells but a list without a header has at most 4 columns (email, name, kind, group), '
        'so columns E ("x"), G ("y") would be lost.'
    )


# --- encodings ------------------------------------------------------------------------------------

ZOE = "email,name\nzoe@acme.example,Zoë Müller\n"


def test_a_windows_1252_file_is_read_as_windows_1252():
    parsed = parse(ZOE.encode("cp1252"))
    assert (parsed.rows[0].name, parsed.encoding) == ("Zoë Müller", "cp1252")
    assert encoding_label(parsed.encoding) == "Windows-1252 (Western European)"


def test_a_short_western_file_that_several_code_pages_read_goes_to_windows_1252():
    # charset-normalizer alone ranks Windows-1250 first here, which would turn "Núñez" into "Núńez".
    data = "email,name\njose@acme.example,José Núñez\nchloe@acme.example,Chloé Bœuf\n".encode("cp1252")
    parsed = parse(data)
    assert [row.name for row in parsed.rows] == ["José Núñez", "Chloé Bœuf"] and parsed.encoding == "cp1252"


def test_a_cyrillic_file_is_not_forced_into_windows_1252():
    names = ["Иван Петров", "Ольга Смирнова", "Сергей Иванов", "Мария Кузнецова", "Дмитрий Соколов"]
    data = ("email,name\n" + "".join(f"u{i}@acme.example,{name}\n" for i, name in enumerate(names))).encode("cp1251")
    parsed = parse(data)
    assert parsed.encoding == "cp1251" and [row.name for row in parsed.rows] == names


def test_the_encoding_is_guessed_from_the_first_line_that_is_not_utf8_however_far_down():
    ascii_rows = "".join(f"user{i:06d}@acme.example,User {i}\n" for i in range(50_000))
    parsed = parse(("email,name\n" + ascii_rows + "rene@acme.example,René Noël\n").encode("cp1252"))
    assert parsed.encoding == "cp1252" and parsed.rows[-1].name == "René Noël"


def test_a_file_in_two_encodings_is_refused_naming_the_line_that_does_not_fit():
    # The guess reads 64 KiB from the first line that is not UTF-8; 0x81 is not Windows-1252 at all.
    ascii_rows = "".join(f"user{i:06d}@acme.example,User {i}\n" for i in range(5_000))
    data = ("email,name\nrene@acme.example,René\n" + ascii_rows).encode("cp1252") + b"x@acme.example,\x81\n"
    with pytest.raises(ImportFileError, match=r"reads as Windows-1252.*line 5003 contains the byte 0x81.*CSV UTF-8"):
        parse(data)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_recognised(codec):
    parsed = parse(ZOE.encode(codec))
    assert (parsed.rows[0].email, parsed.rows[0].name, parsed.encoding) == ("zoe@acme.example", "Zoë Müller", codec)


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff"])
def test_utf16_with_a_byte_order_mark_is_read_whatever_its_byte_order(bom):
    body = ZOE.encode("utf-16-le" if bom == b"\xff\xfe" else "utf-16-be")
    parsed = parse(bom + body)
    assert parsed.has_header and parsed.rows[0].name == "Zoë Müller" and encoding_label(parsed.encoding) == (
        "UTF-16 (with a byte-order mark)"
    )


def test_utf8_is_read_as_utf8_even_where_a_code_page_would_also_read_it():
    parsed = parse(ZOE.encode())
    assert (parsed.rows[0].name, parsed.encoding) == ("Zoë Müller", "utf-8")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "binary file, not CSV text: line 3 contains a NUL"),
        (b"PK\x03\x04\x14\x00\x06\x00", r"Excel workbook \(\.xlsx\).*save it as CSV"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", r"old Excel workbook \(\.xls\).*save it as CSV"),
        (b"\xff\xfee\x00m\x00\x00\x00a\x00", "binary file, not CSV text: line 1 contains a NUL byte"),
        ("email\nann@acme.example\n".encode("utf-16-le")[:-1], "damaged or cut short"),
    ],
    ids=["png", "xlsx", "xls", "utf16-bom-with-nul", "utf16-cut-short"],
)
def test_binary_files_named_csv_are_refused(data, expected):
    with pytest.raises(ImportFileError, match=expected):
        parse(data)


def test_the_row_limit_allows_exactly_the_limit_and_refuses_one_more():
    header = b"email\n"
    body = b"".join(b"u%d@acme.example\n" % i for i in range(10))
    assert len(parse(header + body, max_rows=10).rows) == 10
    with pytest.raises(ImportFileError, match="more than 10 rows; the limit is 10"):
        parse(header + body + b"extra@acme.example\n", max_rows=10)


def test_blank_lines_do_not_count_as_rows():
    parsed = parse(b"email\n\nann@acme.example\n,,\nbob@acme.example\n", max_rows=2)
    assert [r.row_number for r in parsed.rows] == [3, 5]


def test_the_size_limit_names_both_sizes():
    with pytest.raises(ImportFileError, match=r"The file is 2 KiB; the limit is 1 KiB"):
        parse(b"email\n" + b"a" * 2042, max_bytes=1024)


def test_format_size_reads_naturally():
    assert [format_size(n) for n in (10, 2048, 20 * 1024 * 1024, 25_000_000)] == ["10 bytes", "2 KiB", "20 MiB", "23.8 MiB"]


def test_addresses_are_trimmed_and_their_domain_lower_cased_but_the_local_part_kept():
    assert normalize_address("  Ann.Lee@ACME.Example \t") == "Ann.Lee@acme.example"


def test_idn_domains_and_their_punycode_twin_normalize_to_one_address():
    unicode_form = normalize_address("jörg@bücher.example")
    assert unicode_form == normalize_address("jörg@XN--BCHER-KVA.example") == "jörg@xn--bcher-kva.example"


def test_the_same_address_in_different_case_has_one_key():
    assert address_key(normalize_address("ANN@Acme.Example")) == address_key(normalize_address("ann@acme.example"))
    assert address_key(normalize_address("Ärger@x.example")) == address_key(normalize_address("ärger@x.example"))


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "the email cell is empty"),
        ("ann", "must have an @-sign"),
        ("ann@acme", "should have a period"),
        ("ann..lee@acme.example", "two periods in a row"),
        ("ann lee@acme.example", "invalid characters"),
        ("ann@acme.example@x.example", "malformed address"),
        ("a" * 65 + "@acme.example", "longer than 64 characters"),
    ],
)
def test_malformed_addresses_say_why(raw, reason):
    with pytest.raises(AddressError, match=reason):
        normalize_address(raw)


def test_kinds_accept_aliases_and_refuse_unknown_ones():
    assert [normalize_kind(k) for k in ("", " User ", "Room", "shared mailbox")] == ["user", "user", "resource", "shared"]
    with pytest.raises(ValueError, match="unknown kind 'printer'"):
        normalize_kind("printer")


def test_names_keep_formula_characters_and_long_ones_are_refused():
    assert normalize_text("=HYPERLINK(\"x\")", label="name", limit=200) == '=HYPERLINK("x")'
    with pytest.raises(ValueError, match="name is longer than 5 characters"):
        normalize_text("abcdef", label="name", limit=5)


def test_domain_matching_accepts_subdomains_only():
    domains = frozenset({"acme.example"})
    assert domain_matches("a@acme.example", domains) and domain_matches("a@eu.acme.example", domains)
    assert not domain_matches("a@notacme.example", domains)
