"""Configuration from the environment: production refuses to start without its secrets."""

import pytest

from config import ConfigurationError, build_config


def test_production_without_secrets_stops_with_what_to_set(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("TOKEN_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(ConfigurationError, match="SECRET_KEY and TOKEN_ENCRYPTION_KEYS"):
        build_config(str(tmp_path), "production")
    assert not (tmp_path / "secret_key").exists()


def test_development_generates_secrets_once_into_the_instance_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("TOKEN_ENCRYPTION_KEYS", raising=False)
    first = build_config(str(tmp_path), "development")
    second = build_config(str(tmp_path), "development")
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["TOKEN_ENCRYPTION_KEYS"] == second["TOKEN_ENCRYPTION_KEYS"]
    assert oct((tmp_path / "token_keys").stat().st_mode & 0o777) == "0o600"


def test_production_cookies_are_secure(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", "k1,k2")
    config = build_config(str(tmp_path), "production")
    assert config["SESSION_COOKIE_SECURE"] and config["SESSION_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["TOKEN_ENCRYPTION_KEYS"] == ["k1", "k2"]


def test_half_configured_cronofy_credentials_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CRONOFY_CLIENT_ID", "cli_1")
    monkeypatch.delenv("CRONOFY_CLIENT_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match="both CRONOFY_CLIENT_ID and CRONOFY_CLIENT_SECRET"):
        build_config(str(tmp_path), "testing")


def test_plain_postgres_urls_use_psycopg3(tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db:5432/console")
    assert build_config(str(tmp_path), "testing")["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db:5432/console"


def test_malformed_numbers_name_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("INVITATION_TTL_HOURS", "a week")
    with pytest.raises(ConfigurationError, match="INVITATION_TTL_HOURS"):
        build_config(str(tmp_path), "testing")


def test_a_lease_under_a_second_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LEASE_SECONDS", "0")
    with pytest.raises(ConfigurationError, match="LEASE_SECONDS must be at least 1"):
        build_config(str(tmp_path), "testing")
