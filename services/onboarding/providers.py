"""The calendar services a customer can connect, and what their administrator must do first (§6).

Plain data, no Flask. Every checklist item has a stable id: the wizard stores the ids the admin
ticked, so rewording an item never loses anyone's progress.
"""

from __future__ import annotations

from dataclasses import dataclass

GOOGLE = "google"
MICROSOFT_GRAPH = "microsoft_graph"
EXCHANGE_EWS = "exchange_ews"


@dataclass(frozen=True)
class ChecklistItem:
    """One thing the customer's Google or Microsoft administrator does before connecting."""

    id: str
    text: str
    detail: str | None = None
    command: str | None = None
    optional: bool = False


@dataclass(frozen=True)
class Notice:
    """A warning shown with a provider's checklist; level is a Bootstrap alert colour."""

    id: str
    level: str
    title: str
    text: str


@dataclass(frozen=True)
class Provider:
    """A calendar back-end Enterprise Connect can reach, with its setup checklist."""

    key: str
    label: str
    summary: str
    # The upstream's own name for the back-end (§3.1 provider_name, §3.8 provider_name).
    upstream_name: str
    admin_role: str
    checklist: tuple[ChecklistItem, ...]
    notices: tuple[Notice, ...]
    supports_free_busy_only: bool = False

    def item(self, item_id: str) -> ChecklistItem | None:
        """Return the checklist item with this id, or None."""
        return next((item for item in self.checklist if item.id == item_id), None)

    @property
    def admin_article(self) -> str:
        """Return the indefinite article for admin_role: "an Exchange administrator", "a Google …"."""
        return "an" if self.admin_role[:1].lower() in "aeiou" else "a"

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Return the ids of every checklist item, in order."""
        return tuple(item.id for item in self.checklist)


PROPAGATION = Notice(
    id="propagation",
    level="info",
    title="Changes take a while to reach everyone",
    text=(
        "Settings changed in the Google Admin console or in Microsoft's admin centres are not applied "
        "everywhere at once: it can take from a few minutes to several hours. If connecting fails right "
        "after a change, wait a little and try again before changing anything else."
    ),
)

_GOOGLE_CHECKLIST = (
    ChecklistItem(
        id="google_admin",
        text="Sign in to the Google Admin console as a super administrator, or as an admin allowed to "
        "install Marketplace apps for the whole domain.",
    ),
    ChecklistItem(
        id="google_marketplace_app",
        text="Install Cronofy's app from the Google Workspace Marketplace for your domain.",
        detail="There is no service account or domain-wide delegation to set up by hand: the Marketplace "
        "app takes care of that.",
    ),
    ChecklistItem(
        id="google_trust_client",
        text="If your domain blocks third-party apps, mark Cronofy's Google OAuth client as trusted.",
        detail="In Security › API controls › App access control, add the client ID below and set it to "
        "Trusted.",
        command="902414518019",
    ),
    ChecklistItem(
        id="google_restrict_ou",
        text="To connect only some people or rooms, put them in an organizational unit and allow "
        "the app for that unit only.",
        detail="Install the app at the top level, then switch its access off for everyone except that "
        "unit. The admin who connects needs the custom roles Admin API › Users › Read (for that unit) and "
        "Admin API › Domain Management.",
        optional=True,
    ),
    ChecklistItem(
        id="google_conferencing",
        text="For Google Meet links on free/busy-only calendars, also install the separate "
        "Cronofy Conferencing Marketplace app.",
        optional=True,
    ),
)

_GRAPH_CHECKLIST = (
    ChecklistItem(
        id="graph_global_admin",
        text="Have a Microsoft Entra (Azure AD) Global Administrator at hand: only that role can give "
        "the consent.",
        detail="Microsoft shows its consent screen twice: first to confirm your tenant, then to accept "
        "the permissions.",
    ),
    ChecklistItem(
        id="graph_permissions",
        text="Be ready to accept these Microsoft Graph permissions for Cronofy's app.",
        detail="User.Read.All and Organization.Read.All (who is in your tenant), Places.Read.All (rooms "
        "and resources) and Calendars.ReadWrite (the calendars themselves).",
    ),
    ChecklistItem(
        id="graph_mail_rules",
        text="Check that your mail transport rules accept mail from Cronofy's domain.",
    ),
    ChecklistItem(
        id="graph_access_policy",
        text="To limit which mailboxes Cronofy can reach, create an application access policy "
        "in Exchange Online PowerShell.",
        detail="The group must be a mail-enabled security group created in the Exchange admin centre; "
        "groups that exist only in Entra do not work. Use -AccessRight DenyAccess for a deny-list "
        "instead, and check the result with Test-ApplicationAccessPolicy.",
        command="New-ApplicationAccessPolicy -AppId 10bb7e5b-b80b-4e6e-a209-f78581dbc79e "
        "-PolicyScopeGroupId <mail-enabled security group> -AccessRight RestrictAccess",
        optional=True,
    ),
)

_EWS_CHECKLIST = (
    ChecklistItem(
        id="ews_service_account",
        text="Create a dedicated service account for Cronofy.",
        detail="On Microsoft 365 it needs an E3 (or higher) licence to sync people's calendars, and an "
        "active mailbox to list rooms and resources.",
    ),
    ChecklistItem(
        id="ews_impersonation",
        text="Give the service account the ApplicationImpersonation role (full access), optionally "
        "limited to some mailboxes with a management scope.",
        detail="For calendar-only access, add folder-level restrictions to the Calendar folders on top "
        "of impersonation.",
        command="New-ManagementRoleAssignment -Role:ApplicationImpersonation -User:<service account>",
    ),
    ChecklistItem(
        id="ews_free_busy_permission",
        text="Only for free/busy-only access: instead of impersonation, grant the service account "
        "AvailabilityOnly on each mailbox's calendar.",
        detail="Cronofy must first switch free/busy-only on for the vendor's application, and the vendor "
        "then asks for nothing but free/busy.",
        command="Add-MailboxFolderPermission -Identity <mailbox>:\\Calendar -AccessRights AvailabilityOnly "
        "-User <service account>",
        optional=True,
    ),
    ChecklistItem(
        id="ews_network",
        text="Make sure Cronofy can reach your EWS endpoint over HTTPS (port 443), and that Autodiscover "
        "works or you know the EWS URL.",
        detail="Cronofy connects from fixed addresses per data center; allow them in your firewall.",
    ),
    ChecklistItem(
        id="ews_test",
        text="Test the service account with Microsoft's Remote Connectivity Analyzer (the \"Service "
        "Account Access (Developers)\" test).",
        detail="If it reports that impersonation is missing, run the role assignment again and wait for "
        "it to apply.",
    ),
    ChecklistItem(
        id="ews_details_ready",
        text="Have ready for the consent page: the service account's username and password, the email of "
        "one mailbox it can impersonate, and the EWS URL if Autodiscover is not set up.",
    ),
)

PROVIDERS: dict[str, Provider] = {
    GOOGLE: Provider(
        key=GOOGLE,
        label="Google Workspace",
        summary="Calendars hosted by Google. A Google Workspace administrator installs Cronofy's "
        "Marketplace app, then approves the connection.",
        upstream_name="google",
        admin_role="Google Workspace super administrator",
        checklist=_GOOGLE_CHECKLIST,
        notices=(PROPAGATION,),
    ),
    MICROSOFT_GRAPH: Provider(
        key=MICROSOFT_GRAPH,
        label="Microsoft 365 (Graph API)",
        summary="The recommended way for Microsoft 365. A Global Administrator consents to Cronofy's app; "
        "no service account is needed.",
        upstream_name="office365",
        admin_role="Microsoft Entra Global Administrator",
        checklist=_GRAPH_CHECKLIST,
        notices=(
            Notice(
                id="graph_no_free_busy_only",
                level="warning",
                title="Free/busy-only access is not possible through Graph",
                text="Microsoft's Graph permissions need full read access even to show free/busy. If your "
                "policy allows sharing free/busy only, use Exchange via EWS instead.",
            ),
            PROPAGATION,
        ),
    ),
    EXCHANGE_EWS: Provider(
        key=EXCHANGE_EWS,
        label="Exchange on-premises or Microsoft 365 via EWS",
        summary="Exchange Server in your own data center, or free/busy-only access. Cronofy signs in "
        "with a service account you create.",
        upstream_name="exchange",
        admin_role="Exchange administrator",
        checklist=_EWS_CHECKLIST,
        notices=(
            Notice(
                id="ews_365_retirement",
                level="danger",
                title="EWS is being retired for Microsoft 365",
                text="Microsoft removed ApplicationImpersonation from Exchange Online in February 2025, so "
                "EWS service accounts on Microsoft 365 stop syncing, and Microsoft blocks EWS for Microsoft "
                "365 altogether from 1 October 2026. If your mailboxes are in Microsoft 365, go back and "
                "choose Microsoft 365 (Graph API). EWS remains the way for Exchange on your own servers "
                "and for free/busy-only access.",
            ),
            Notice(
                id="ews_free_busy_only",
                level="info",
                title="Free/busy-only access needs EWS",
                text="Sharing only free/busy (no event details) works through EWS alone, and only after "
                "Cronofy has enabled it for the vendor's application.",
            ),
            PROPAGATION,
        ),
        supports_free_busy_only=True,
    ),
}

PROVIDER_KEYS: tuple[str, ...] = tuple(PROVIDERS)


def provider(key: str | None) -> Provider | None:
    """Return the provider with this key, or None for an unknown or empty key."""
    return PROVIDERS.get(key or "")


def known_item_ids(provider_key: str | None, item_ids) -> list[str]:
    """Keep the ids of items that exist in the provider's checklist, in checklist order, once each."""
    chosen = provider(provider_key)
    if chosen is None:
        return []
    wanted = set(item_ids or ())
    return [item_id for item_id in chosen.item_ids if item_id in wanted]
