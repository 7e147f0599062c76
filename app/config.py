"""Settings from the environment (and an optional .env file)."""

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# The async drivers the service runs on, by backend: a URL naming another driver (or
# none: `postgresql://` means psycopg2 to SQLAlchemy) is refused at start with the fix.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}


def project_dir() -> Path:
    """The directory of the project: the one holding `alembic.ini` beside the `app`
    package (a source checkout, installed editable), else the working directory (an
    installed package run from its deployment directory, as in the Docker image)."""
    source = Path(__file__).resolve().parents[1]
    return source if (source / "alembic.ini").is_file() else Path.cwd()


def default_database_url() -> str:
    """`var/computematch.db` of the project, wherever the command runs from: a command
    run from another directory uses (and reports on) the same database, and never
    leaves an empty `var/computematch.db` behind in the working directory."""
    return f"sqlite+aiosqlite:///{project_dir() / 'var' / 'computematch.db'}"


def _async_driver(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            "DATABASE_URL is not a database URL; use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user:password@host/db"
        ) from None
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    wanted = ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise ValueError(
            f"DATABASE_URL names {backend}; the service runs on SQLite "
            "(sqlite+aiosqlite://) or PostgreSQL (postgresql+asyncpg://)"
        )
    if driver != wanted:
        scheme = url.partition("://")[0]
        raise ValueError(
            f"DATABASE_URL starts with {scheme}://, a driver the service does not use; "
            f"use {backend}+{wanted}:// (the rest of the URL unchanged)"
        )
    return url


_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")


def _origins(value: object) -> object:
    """`https://a.example,https://b.example` or a JSON list; each an origin, no path."""
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else text.split(",")
    if isinstance(value, list):
        value = [str(v).strip() for v in value if str(v).strip()]
        for origin in value:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(f"{origin!r} is not an origin such as https://app.example.com")
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_prefix="COMPUTEMATCH_",
        extra="ignore",
        populate_by_name=True,
        # A refused DATABASE_URL may hold a password: its errors never quote it.
        hide_input_in_errors=True,
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: Annotated[str, AfterValidator(_async_driver)] = Field(
        default_factory=default_database_url,
        validation_alias=AliasChoices("DATABASE_URL", "COMPUTEMATCH_DATABASE_URL"),
    )
    # Accepted as an operator key when set (set-up and demos); never logged.
    operator_key: SecretStr | None = None
    docs_enabled: bool = True
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_sync_batch: int = Field(10_000, ge=1)
    quote_ttl_seconds: int = Field(900, ge=10)
    max_open_quotes_per_enterprise: int = Field(200, ge=1)
    max_open_requests_per_enterprise: int = Field(500, ge=1)
    # Requests per API key per minute (fixed windows, counted in the database so that
    # every worker shares them); 0 turns rate limiting off.
    rate_limit_per_minute: int = Field(6000, ge=0)
    # Keyless self-registrations (POST /v1/providers, /v1/enterprises) per client IP per minute.
    registration_rate_limit_per_minute: int = Field(30, ge=0)
    # Browser origins allowed to call the API (CORS); empty: no CORS headers at all.
    cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_origins)] = Field(
        default_factory=list
    )
    db_pool_size: int = Field(20, ge=1)
    sql_echo: bool = False
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # GET /metrics (Prometheus); outside the API's key auth, optionally behind a bearer token.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = None

    @model_validator(mode="after")
    def _refuse_placeholders_in_production(self) -> "Settings":
        # A production deployment must not run on a guessable bootstrap key.
        if self.environment == "production" and self.operator_key is not None:
            value = self.operator_key.get_secret_value()
            if len(value) < 32 or value.lower() in {"changeme", "operator", "secret"}:
                raise ValueError("COMPUTEMATCH_OPERATOR_KEY is too weak for production")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
