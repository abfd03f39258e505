"""The bulk engine: runs and their waves, attempts, the pump (scheduler), the callbacks Cronofy sends,
code exchanges, lost authorizations, revoke runs and recovery. Uses services.mailboxes,
services.onboarding, services.connections and services.platform.
"""
