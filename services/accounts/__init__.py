"""People and organizations: passwords and sign-in, server-side sessions, invitations, password resets,
organizations, and support staff acting on an organization's behalf. Uses services.platform.
"""
