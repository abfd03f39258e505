"""The mailbox list's rows name a failure's cause in a few words, linking to its group on the panel above."""

from __future__ import annotations

import re

from tests.helpers import make_mailbox


def test_failed_rows_link_their_short_cause_to_its_group(client, login_as, make_org_admin):
    admin = login_as(make_org_admin())
    organization = admin.organization
    words = "The mailbox zed@acme.example was not found in the directory of acme.example"
    for n in range(3):
        make_mailbox(organization, email=f"gone{n}@acme.example", status="failed", last_error_key="not_found",
                     last_error_description=words)
    make_mailbox(organization, email="fine@acme.example", status="authorized")
    page = client.get(f"/orgs/{organization.id}/mailboxes").get_data(as_text=True)
    table = page[page.index('data-testid="mailbox-table"'):]
    links = re.findall(r'<a href="#([\w-]+)" data-testid="cause-link">([^<]+)</a>', table)
    assert len(links) == 3 and len({anchor for anchor, _ in links}) == 1
    anchor, name = links[0]
    assert f'id="{anchor}"' in page  # the group it links to is on the page
    assert name == "Mailbox not found" and words not in table  # the explanation is said once, on the panel
