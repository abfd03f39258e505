"""The fake directories of the seeded domains: realistic users, rooms, equipment and shared mailboxes."""

import hashlib

from sqlalchemy import delete, func, insert, select

from sandbox.models import Domain, Member

DOMAINS = (
    {"name": "acme.example", "organization": "Acme Corporation", "provider": "google",
     "city": "Berlin", "region": "BE", "country": "DE", "postal_code": "10115",
     "street": "1 Example Way", "lat": 52.53, "long": 13.38},
    {"name": "globex.example", "organization": "Globex Inc.", "provider": "office365",
     "city": "London", "region": "LND", "country": "GB", "postal_code": "EC1A 1BB",
     "street": "20 Sample Street", "lat": 51.52, "long": -0.1},
    {"name": "initech.example", "organization": "Initech", "provider": "exchange",
     "city": "Austin", "region": "TX", "country": "US", "postal_code": "73301",
     "street": "4120 Freidrich Lane", "lat": 30.27, "long": -97.74},
)

PROVIDERS = {
    "google": {"label": "Google Workspace", "service": "gsuite"},
    "office365": {"label": "Microsoft 365 (Graph API)", "service": "graph"},
    "exchange": {"label": "Microsoft Exchange (EWS)", "service": "exchange"},
}

FIRST_NAMES = (
    "Alice", "Bob", "Carol", "David", "Emma", "Farid", "Grace", "Hiroshi", "Ines", "Jonas", "Keira",
    "Liam", "Maya", "Noah", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe", "Amara", "Bruno", "Chloe", "Dmitri", "Elena", "Felix", "Gita",
    "Hugo", "Ivy", "Jamal", "Kaito", "Lena", "Mateo", "Nadia", "Oscar", "Priya", "Rafael", "Sofia",
    "Tomas", "Valentina", "William", "Yara", "Zain", "Anika",
)
LAST_NAMES = (
    "Anderson", "Baker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hansen", "Ivanova",
    "Johnson", "Kowalski", "Lopez", "Müller", "Nakamura", "Okafor", "Patel", "Quintero", "Rossi",
    "Schmidt", "Tanaka", "Usman", "Varga", "Wagner", "Xu", "Yilmaz", "Zhang", "Andersen", "Becker",
    "Costa", "Diallo", "Eriksson", "Ferreira", "Gupta", "Horvath", "Ito", "Jansen", "Kim", "Larsen",
    "Mendes", "Novak", "O'Brien", "Petrov", "Reyes", "Silva", "Thompson", "Ueda", "Volkov", "Weber",
    "Young", "Zimmermann",
)
ROOM_NAMES = (
    "Atlas", "Borealis", "Cedar", "Delta", "Everest", "Fjord", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lagoon", "Meridian", "Nimbus", "Orion", "Pinnacle", "Quarry", "Redwood", "Summit",
    "Tundra", "Umbra", "Vista", "Willow", "Zenith",
)
EQUIPMENT = ("Projector", "Pool Car", "Camera Kit", "Laptop Cart", "Video Bar", "Drone")
SHARED = ("Sales", "Support", "Recruiting", "Facilities", "Finance", "Marketing", "Events", "Legal",
          "Reception", "IT Help Desk", "Payroll", "Press")
SECTIONS = ("North", "South", "East", "West")

# Failure traits by hash bucket (0-99); about 15% of mailboxes fail, the way real ones do.
USER_TRAITS = ((4, "outside_policy"), (7, "suspended"), (10, "unlicensed"), (15, "free_busy_only"))
SHARED_TRAITS = ((4, "outside_policy"), (7, "suspended"), (12, "free_busy_only"))  # shared mailboxes need no licence
RESOURCE_TRAITS = ((4, "outside_policy"), (10, "free_busy_only"))
TRAITS = ("outside_policy", "suspended", "unlicensed", "free_busy_only")
KINDS = ("user", "room", "equipment", "shared")


def bucket(email):
    """Return the stable 0-99 bucket of an email, so the same email always behaves the same."""
    return int(hashlib.sha256(email.lower().encode()).hexdigest()[:8], 16) % 100


def trait_for(email, kind):
    """Return the failure trait of a mailbox, or None when it authorizes normally."""
    table = {"user": USER_TRAITS, "shared": SHARED_TRAITS}.get(kind, RESOURCE_TRAITS)
    value = bucket(email)
    for upper, trait in table:
        if value < upper:
            return trait
    return None


def ensure_domains(db):
    """Create the three seeded domains when missing; return them by name."""
    existing = {d.name: d for d in db.scalars(select(Domain))}
    for spec in DOMAINS:
        if spec["name"] not in existing:
            domain = Domain(**spec)
            db.add(domain)
            existing[spec["name"]] = domain
    db.flush()
    return existing


def _user_rows(domain, count):
    pairs = len(FIRST_NAMES) * len(LAST_NAMES)
    for index in range(count):
        first = FIRST_NAMES[index % len(FIRST_NAMES)]
        last = LAST_NAMES[(index // len(FIRST_NAMES) + index) % len(LAST_NAMES)]
        suffix = "" if index < pairs else str(index // pairs + 1)
        local = f"{first}.{last}{suffix}".lower().replace("'", "").replace("ü", "ue")
        yield _row(domain, f"{local}@{domain.name}", f"{first} {last}", "user")


def _resource_rows(domain, count):
    for index in range(count):
        floor = index % 6 + 1
        if index % 4 == 3:
            label = f"{EQUIPMENT[index // 4 % len(EQUIPMENT)]} {index // 4 + 1}"
            email = f"{label.lower().replace(' ', '-')}@{domain.name}"
            yield _row(domain, email, label, "equipment", building=f"{domain.city} HQ", floor=str(floor))
        else:
            base = ROOM_NAMES[index % len(ROOM_NAMES)]
            number = index // len(ROOM_NAMES)
            title = base if number == 0 else f"{base} {number + 1}"
            capacity = (4, 6, 8, 10, 12, 20)[index % 6]
            email = f"room.{title.lower().replace(' ', '-')}@{domain.name}"
            yield _row(domain, email, f"{title} ({capacity} seats)", "room", capacity=capacity,
                       building=f"{domain.city} HQ", floor=str(floor), section=SECTIONS[index % 4])


def _shared_rows(domain, count):
    for index in range(count):
        team = SHARED[index % len(SHARED)]
        number = index // len(SHARED)
        title = team if number == 0 else f"{team} {number + 1}"
        email = f"{title.lower().replace(' ', '-')}@{domain.name}"
        yield _row(domain, email, f"{title} (shared)", "shared")


def _row(domain, email, name, kind, capacity=None, building=None, floor=None, section=None):
    return {"domain_id": domain.id, "email": email, "name": name, "kind": kind,
            "trait": trait_for(email, kind), "capacity": capacity, "building_name": building,
            "floor_name": floor, "floor_section": section}


def _ensure_every_trait(rows, traits):
    # Small directories could miss a failure class by chance; give each one to a healthy mailbox, from the end.
    healthy = [row for row in rows if row["trait"] is None]
    missing = [trait for trait in traits if not any(row["trait"] == trait for row in rows)]
    if len(healthy) < 4 * len(missing):
        return
    for trait, row in zip(missing, reversed(healthy)):
        row["trait"] = trait


def seed_domain(db, domain, users, rooms, shared):
    """Replace a domain's directory with `users` users, `rooms` rooms/equipment and `shared` shared mailboxes."""
    db.execute(delete(Member).where(Member.domain_id == domain.id))
    user_rows = list(_user_rows(domain, users))
    _ensure_every_trait(user_rows, [trait for _, trait in USER_TRAITS])
    room_rows = list(_resource_rows(domain, rooms))
    _ensure_every_trait([r for r in room_rows if r["kind"] == "room"], ["free_busy_only"])
    rows = user_rows + room_rows + list(_shared_rows(domain, shared))
    for start in range(0, len(rows), 5000):
        db.execute(insert(Member), rows[start:start + 5000])
    db.flush()


def seed_all(db, users, rooms, shared):
    """Create the seeded domains and give each a directory of the given size."""
    for domain in ensure_domains(db).values():
        seed_domain(db, domain, users, rooms, shared)


def is_empty(db):
    """Tell whether the directory holds no domain yet."""
    return db.scalar(select(func.count()).select_from(Domain)) == 0


def domain_counts(db):
    """Return {domain name: {kind: count}} for the admin page."""
    rows = db.execute(select(Domain.name, Member.kind, func.count()).join(Member, Member.domain_id == Domain.id)
                      .group_by(Domain.name, Member.kind))
    counts = {}
    for name, kind, count in rows:
        counts.setdefault(name, {})[kind] = count
    return counts
