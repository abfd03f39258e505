"""The service-account connection of an organization: recording it from a consent, its short-lived token
and the refresh under a lease, marking it for re-authorization, disconnecting. Uses services.platform.
"""
