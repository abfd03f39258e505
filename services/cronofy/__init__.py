"""Cronofy upstream client: hosts, typed errors, the client, and callback HMACs. No Flask."""

from .client import MAX_DELEGATED_BATCH, CronofyClient
from .errors import (
    AccountLockedError,
    AuthenticationError,
    CronofyError,
    ForbiddenError,
    InvalidGrantError,
    InvalidRequestError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitedError,
    UnavailableError,
    parse_retry_after,
)
from .hmac import HEADER as HMAC_HEADER
from .hmac import sign, verify_hmac
from .hosts import DATA_CENTERS, Upstream, base_urls, upstream_for
from .models import (
    Calendar,
    DelegatedRequest,
    FreeBusyPeriod,
    LinkingProfile,
    Profile,
    Resource,
    TokenSet,
    UserInfo,
)
from .retry import RetryPolicy

__all__ = [
    "AccountLockedError",
    "AuthenticationError",
    "Calendar",
    "CronofyClient",
    "CronofyError",
    "DATA_CENTERS",
    "DelegatedRequest",
    "ForbiddenError",
    "FreeBusyPeriod",
    "HMAC_HEADER",
    "InvalidGrantError",
    "InvalidRequestError",
    "LinkingProfile",
    "MAX_DELEGATED_BATCH",
    "NotFoundError",
    "PaymentRequiredError",
    "Profile",
    "RateLimitedError",
    "Resource",
    "RetryPolicy",
    "TokenSet",
    "UnavailableError",
    "Upstream",
    "UserInfo",
    "base_urls",
    "parse_retry_after",
    "sign",
    "upstream_for",
    "verify_hmac",
]
