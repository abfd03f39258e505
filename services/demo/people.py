"""The people list the demo imports: a realistic HR export of acme.example, in departments.

Most people authorize; a few are of the kinds that fail in real directories (docs/sandbox.md, "Failure
traits"): outside the access policy, suspended, without a calendar licence, limited to free/busy; and a
few have left the company and are gone from the directory (Cronofy answers `not_found`). The sandbox's
directory says which member is which, so the mix is the same on every machine.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from services.demo import sandbox_admin

DEPARTMENTS = ("Sales", "Engineering", "Customer Success", "Finance", "Operations", "Marketing", "People")
# Share of the people list per failure trait of the sandbox directory, each at least one person.
FAILING_SHARES = (("outside_policy", 0.035), ("suspended", 0.025), ("unlicensed", 0.02), ("free_busy_only", 0.045))
LEAVER_SHARE = 0.02
# People who left: on the HR export still, gone from the directory (no sandbox name has these first names).
LEAVERS = ("Harriet Lowe", "Ignatius Marsh", "Jasper Quill", "Kirsten Vance", "Leopold Brandt", "Marguerite Hale",
           "Nikolai Sterling", "Ottilie Crane", "Percival Drake", "Rosalind Frost", "Sebastian Wilde", "Theodora Hart")


@dataclass(frozen=True)
class Person:
    """One row of the list: an address, a display name and a department."""

    email: str
    name: str
    group: str


def _share(count: int, share: float) -> int:
    return max(1, round(count * share))


def _leavers(count: int, domain: str) -> list[tuple[str, str]]:
    chosen = []
    for index in range(count):
        name = LEAVERS[index % len(LEAVERS)]
        suffix = "" if index < len(LEAVERS) else str(index // len(LEAVERS) + 1)
        chosen.append((f"{name.lower().replace(' ', '.')}{suffix}@{domain}", name))
    return chosen


def people(domain: str, count: int) -> list[Person]:
    """Return count people of domain (fewer if its directory is smaller), sorted by address, in departments.

    :raises sandbox_admin.SandboxUnavailable: when the sandbox does not answer.
    """
    if count < 1:
        return []
    leavers = _leavers(min(_share(count, LEAVER_SHARE), count), domain)
    found: list[tuple[str, str]] = []
    for trait, share in FAILING_SHARES:
        wanted = min(_share(count, share), count - len(leavers) - len(found))
        members = sandbox_admin.directory(domain, kind="user", trait=trait, limit=wanted) if wanted > 0 else []
        found += [(member["email"], member["name"]) for member in members]
    wanted = count - len(leavers) - len(found)
    if wanted > 0:
        members = sandbox_admin.directory(domain, kind="user", trait="none", limit=wanted)
        found += [(member["email"], member["name"]) for member in members]
    rows = sorted(found + leavers)
    return [Person(email, name, DEPARTMENTS[index % len(DEPARTMENTS)]) for index, (email, name) in enumerate(rows)]


def as_csv(rows: list[Person]) -> bytes:
    """Return the list as the CSV file an admin would upload (email, name, kind, group)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(("email", "name", "kind", "group"))
    writer.writerows((person.email, person.name, "user", person.group) for person in rows)
    return buffer.getvalue().encode()
