"""What can go wrong on the way to and back from the consent page, in words, and the exception that carries it.

Each problem says what happened, whether anything was stored, and which wizard step offers a way
forward. Kept apart from `consent` so that the flow itself stays readable.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.onboarding import ConsentAttempt, WizardSession
from services.onboarding import stale_consent


@dataclass(frozen=True)
class ProblemText:
    title: str
    message: str
    status: int
    retry_step: str | None  # the wizard step that offers a way forward, None when the state is unusable
    final: bool = False  # the setup behind the attempt is gone: there is no way back to offer


PROBLEMS: dict[str, ProblemText] = {
    "missing_state": ProblemText(
        "This reply cannot be matched", "The answer from the consent page carried no state, so it cannot be matched "
        "to a connection you started. Nothing was connected. Start the connection again from the wizard.", 400, None),
    "unknown_state": ProblemText(
        "This reply does not belong to a connection you started", "The answer from the consent page does not match "
        "any connection started from this console, so it was ignored. Nothing was connected.", 400, None),
    "other_session": ProblemText(
        "This reply belongs to another browser", "The connection was started in another browser or session, so this "
        "browser cannot finish it. Nothing was connected here; start the connection again from this browser.", 400,
        "review"),
    "used_state": ProblemText(
        "This reply was already handled", "This answer from the consent page has already been processed once; it "
        "cannot be used again.", 409, "review"),
    "expired_state": ProblemText(
        "The connection attempt expired", "Too much time passed between leaving for the consent page and coming "
        "back, so the attempt expired. Nothing was connected. Start the connection again.", 410, "review"),
    "denied": ProblemText(
        "The connection was declined", "The administrator chose Deny on the consent page, so nothing was connected. "
        "If that was a mistake, connect again. If your administrator is unsure what is being asked for, share the "
        "setup checklist and the permissions page with them, or send them a setup link.", 200, "review"),
    "invalid_scope": ProblemText(
        "Cronofy refused the requested permissions", "Cronofy did not accept the permissions this console asked for, "
        "so nothing was connected. Go back to the permissions step, choose one of the presets and try again; if it "
        "happens again, contact the vendor's support (the attempt has been logged).", 200, "scopes"),
    "refused": ProblemText(
        "The consent page reported an error", "The consent page sent the administrator back with an error, so nothing "
        "was connected. Try again in a few minutes; if it keeps happening, contact the vendor's support.", 200,
        "review"),
    "exchange_failed": ProblemText(
        "The approval could not be completed", "Cronofy no longer accepts this approval: it was already used or more "
        "than ten minutes passed. Nothing was connected. Connect again; it only takes the consent page once more.",
        400, "review"),
    "timed_out": ProblemText(
        "Cronofy did not answer in time", "Cronofy took too long to confirm the approval, so the console stopped "
        "waiting. Nothing was saved. Wait a few minutes and connect again.", 504, "review"),
    "unavailable": ProblemText(
        "Cronofy is not reachable", "Cronofy could not be reached or answered with an error while confirming the "
        "approval. Nothing was saved. Wait a few minutes and connect again.", 502, "review"),
    "upstream_error": ProblemText(
        "Cronofy refused to complete the connection", "Cronofy refused the request that completes the connection. "
        "Nothing was saved. Contact the vendor's support; the attempt has been logged.", 502, "review"),
    "bad_data_center": ProblemText(
        "Unknown data center", "This organization's data center is not one Cronofy has, so nothing can be "
        "connected. Ask the vendor's support to correct it.", 400, "provider"),
    "superseded": ProblemText(
        "A newer connection attempt replaced this one", "Connect was pressed again after this consent page was "
        "opened, and only the newest attempt can finish a connection. The answer from this consent page was not "
        "used: nothing was connected or changed.", 409, "review"),
    "wizard_closed": ProblemText(
        "This setup is closed", "The wizard this connection belongs to was finished or discarded. Start a new one to "
        "connect calendars.", 409, None),
    "link_withdrawn": ProblemText(
        "This setup link was withdrawn", "This setup link was withdrawn while the consent page was open, so the "
        "approval was not used. Nothing was connected or changed. Ask whoever sent the link for a new one.", 410, None,
        final=True),
    "link_expired": ProblemText(
        "This setup link has expired", "This setup link expired before the consent page sent you back, so the "
        "approval was not used. Nothing was connected or changed. Ask whoever sent the link for a new one.", 410,
        None, final=True),
    "setup_finished": ProblemText(
        "This setup is already finished", "The calendars of this setup were connected another way while the consent "
        "page was open, so this approval was not used. Nothing was changed.", 409, None, final=True),
    "wizard_discarded": ProblemText(
        "This setup was discarded", "This setup was discarded while the consent page was open, so the approval was "
        "not used. Nothing was connected or changed. To connect calendars, start a new setup in the console, or ask "
        "whoever sent you the link for a new one.", 410, None, final=True),
}
REDIRECT_ERRORS = {"access_denied": "denied", "invalid_scope": "invalid_scope"}
# Outcomes that revoking the link or discarding the wizard give an attempt still under way, and back.
ENDED_OUTCOMES = {"withdrawn": "link_withdrawn", "discarded": "wizard_discarded", "superseded": "superseded"}
ENDED_KINDS = {kind: outcome for outcome, kind in ENDED_OUTCOMES.items()}
LINK_GONE = {"revoked": "link_withdrawn", "expired": "link_expired", "used": "setup_finished"}


class ConsentProblem(Exception):
    """The consent flow ended without a connection; `text` says so in words, `attempt` may be None.

    `given_back` says what became of a superseded approval's authorization (see `stale_consent`).
    """

    def __init__(self, kind: str, attempt: ConsentAttempt | None = None):
        self.kind = kind
        self.text = PROBLEMS[kind]
        self.attempt = attempt
        self.given_back: str | None = None
        super().__init__(self.text.title)

    def give_back(self, code: str | None) -> None:
        """Hand a superseded approval back to Cronofy (see `stale_consent`); other problems keep their code."""
        if self.kind == "superseded" and self.attempt is not None:
            self.given_back = stale_consent.give_back_code(self.attempt, code)

    @property
    def given_back_text(self) -> tuple[str | None, str | None]:
        """Return (what became of the superseded approval, Cronofy's page to check) for the refusal page."""
        if self.attempt is None:
            return None, None
        return stale_consent.describe(self.given_back, self.attempt.data_center)

    @property
    def wizard(self) -> WizardSession | None:
        return self.attempt.wizard_session if self.attempt is not None else None
