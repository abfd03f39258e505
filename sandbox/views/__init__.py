"""Blueprints of the sandbox."""
