"""Onboarding: the connection wizard, its consent flow and setup links for a colleague."""
