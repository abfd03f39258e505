"""Authorizations Cronofy issued whose tokens never reached the console, and leaving exactly one.

An exchange cut short (a worker killed while Cronofy answered, a timeout after Cronofy had acted) may
leave an authorization at Cronofy that nobody holds tokens for, and the retry of its single-use code
is refused (invalid_grant), so the console cannot tell whether it happened. The mailbox is then marked
(`lost_grant_suspected_at`) and requested again. When that request's exchange names the account
(`sub`), every authorization of the account is revoked — §3.7.1 revokes by token or by `sub`, and the
lost one's token is unknown — and the mailbox is requested once more, so that the authorization whose
tokens the console stores is the only one left.
"""

from __future__ import annotations

import logging

from sqlalchemy import update

from extensions import db
from models.base import utcnow
from models.mailbox import Mailbox
from services.cronofy import CronofyError, RetryPolicy
from services.platform import rate_budget, upstream
from services.platform.rate_budget import BudgetTimeoutError

log = logging.getLogger(__name__)

INTERRUPTED_KEY = "exchange_interrupted"
INTERRUPTED = ("The exchange of this mailbox's one-time code was cut short (a worker stopped, or Cronofy or the "
               "database did not answer in time), so whether Cronofy authorized it is unknown.")
REQUESTED_AGAIN = ("Requested again automatically after an interrupted exchange; if Cronofy had authorized the "
                   "mailbox then, that authorization will be revoked so that only one remains.")
REPLACED_KEY = "lost_authorization_revoked"
REPLACED = ("Cronofy held an earlier authorization of this mailbox whose tokens never reached the console; "
            "every authorization of its account was revoked at Cronofy.")
REQUESTED_ONCE_MORE = "Requested once more, so that the mailbox holds exactly one authorization at Cronofy."
# The revocation is ours to retry (the next exchange tries again); it must not hold a worker thread.
_ONE_TRY = RetryPolicy(max_attempts=1)


def suspect(mailbox_id: int) -> None:
    """Mark the mailbox as possibly holding an authorization at Cronofy whose tokens were lost."""
    db.session.execute(
        update(Mailbox).where(Mailbox.id == mailbox_id, Mailbox.lost_grant_suspected_at.is_(None))
        .values(lost_grant_suspected_at=utcnow()).execution_options(synchronize_session=False)
    )


def clear(mailbox_id: int) -> None:
    """Forget the suspicion: no authorization of the mailbox's account is left at Cronofy."""
    db.session.execute(
        update(Mailbox).where(Mailbox.id == mailbox_id).values(lost_grant_suspected_at=None)
        .execution_options(synchronize_session=False)
    )


def revoke_account(data_center: str, sub: str) -> bool:
    """Revoke every authorization of the account sub at Cronofy; return whether Cronofy confirmed it."""
    return _revoke(data_center, sub=sub)


def revoke_token(data_center: str, token: str) -> bool:
    """Revoke the one authorization behind token (a refresh or access token); return whether confirmed."""
    return _revoke(data_center, token=token)


def _revoke(data_center: str, **target: str) -> bool:
    try:
        rate_budget.budget().acquire(timeout=rate_budget.BUDGET_WAIT)
        upstream.client_for(data_center, retry=_ONE_TRY).revoke(**target)
    except (BudgetTimeoutError, CronofyError) as exc:
        log.warning("Revoking a lost authorization at Cronofy failed (%s); the next exchange tries again",
                    type(exc).__name__)
        return False
    return True
