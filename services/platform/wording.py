"""Words that depend on a count: one pluralization rule for every page, flash and email."""

from __future__ import annotations

_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")


def plural_form(singular: str) -> str:
    """English plural of a regular noun: mailbox → mailboxes, policy → policies, run → runs."""
    if singular.endswith(_SIBILANT_ENDINGS):
        return singular + "es"
    if len(singular) > 1 and singular.endswith("y") and singular[-2] not in "aeiou":
        return singular[:-1] + "ies"
    return singular + "s"


def plural(count: int, singular: str, plural: str | None = None, *, with_count: bool = True) -> str:
    """Return "1 mailbox", "2 mailboxes", "10,000 mailboxes" (or only the noun without the count).

    Irregular nouns pass their plural: plural(n, "person", "people").
    """
    noun = singular if count == 1 else (plural or plural_form(singular))
    return f"{count:,} {noun}" if with_count else noun


_SENTENCE_ENDINGS = (".", "!", "?", "…")
_CLOSERS = "\"'”’)]»"


def sentence(text: str) -> str:
    """End text with one full stop: "Acting for Acme" → "Acting for Acme.", "… Globex Inc." stays as it is.

    For messages that end with a name or an address, which may end with a full stop of its own.
    """
    text = text.rstrip()
    return text if text.rstrip(_CLOSERS).endswith(_SENTENCE_ENDINGS) else text + "."
