"""Normalizing mailbox addresses and the other cells of an imported row.

An address is stored as its local part as written (surrounding whitespace removed, Unicode in NFC
form) and its domain in canonical IDNA form: lower-case ASCII, so `jörg@bücher.example` and
`jörg@xn--bcher-kva.example` are one mailbox. Duplicates are found on `address_key`, which also
folds the local part's case: Google Workspace and Microsoft 365 treat `Ann@x` and `ann@x` as the
same mailbox, so importing both would authorize one calendar twice.
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from models.mailbox import MAILBOX_KINDS

MAX_ADDRESS_LENGTH = 254
MAX_LOCAL_LENGTH = 64
MAX_NAME_LENGTH = 200
MAX_GROUP_LENGTH = 100
KIND_ALIASES = {
    "": "user", "user": "user", "person": "user", "users": "user",
    "shared": "shared", "shared mailbox": "shared", "shared_mailbox": "shared",
    "resource": "resource", "room": "resource", "equipment": "resource",
}
# Plain ASCII local parts (RFC 5322 dot-atom) skip the full validator, which costs ~170 µs a call;
# their domain is still validated, once per distinct domain.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")


class AddressError(ValueError):
    """An address that cannot be a mailbox; the message is the reason shown on its row."""


def normalize_address(raw: str) -> str:
    """Return the canonical form of a mailbox address; :raises AddressError: if it is malformed."""
    text = raw.strip()
    if not text:
        raise AddressError("the email cell is empty")
    local, at, domain = text.rpartition("@")
    if at and _DOT_ATOM.match(local):
        address = f"{local}@{canonical_domain(domain)}"
    else:
        address = _validated(text)
    if len(address.rpartition("@")[0]) > MAX_LOCAL_LENGTH:
        raise AddressError(f"the part before the @-sign is longer than {MAX_LOCAL_LENGTH} characters")
    if len(address) > MAX_ADDRESS_LENGTH:
        raise AddressError(f"the address is longer than {MAX_ADDRESS_LENGTH} characters")
    return address


def address_key(address: str) -> str:
    """Return the key two spellings of one mailbox share (case-folded local part, canonical domain)."""
    local, _, domain = address.rpartition("@")
    return f"{local.casefold()}@{domain.lower()}"


@lru_cache(maxsize=4096)
def canonical_domain(domain: str) -> str:
    """Return domain in lower-case IDNA (ASCII) form; :raises AddressError: if it is not a mail domain."""
    try:
        return validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=True).ascii_domain
    except EmailNotValidError as exc:
        raise AddressError(_reason(exc)) from None


def _validated(text: str) -> str:
    try:
        result = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise AddressError(_reason(exc)) from None
    return f"{result.local_part}@{result.ascii_domain}"


def _reason(exc: EmailNotValidError) -> str:
    return "malformed address: " + str(exc).rstrip(".")


def normalize_kind(raw: str) -> str:
    """Return the mailbox kind a cell names (blank means user); :raises ValueError: for an unknown one."""
    kind = KIND_ALIASES.get(" ".join(raw.strip().lower().split()))
    if kind not in MAILBOX_KINDS:
        raise ValueError(f"unknown kind {raw.strip()!r}: use user, shared or resource")
    return kind


def normalize_text(raw: str, *, label: str, limit: int) -> str:
    """Return a name or group cell with its whitespace collapsed; :raises ValueError: if it is too long."""
    text = " ".join(raw.split())
    if len(text) > limit:
        # Said, never cut short: a shortened name would be imported without anyone noticing.
        raise ValueError(f"the {label} is longer than {limit} characters (it has {len(text):,}); shorten it")
    return text


def domain_matches(address: str, domains: frozenset[str]) -> bool:
    """Return whether address's domain is one of domains or a subdomain of one."""
    domain = address.rpartition("@")[2]
    return any(domain == allowed or domain.endswith("." + allowed) for allowed in domains)
