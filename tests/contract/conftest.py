"""Fixtures of the sandbox contract tests."""

import pytest

from tests.contract.sandbox_support import CallbackReceiver, connect_service_account


@pytest.fixture
def callback_receiver():
    """A loopback server that records the sandbox's callbacks."""
    receiver = CallbackReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def sa_token(sandbox):
    """A fresh service-account authorization on acme.example (Google); the token response JSON."""
    return connect_service_account(sandbox)
