"""Settings from the environment (and an optional .env file)."""

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/computematch.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_prefix="COMPUTEMATCH_", extra="ignore", populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        validation_alias=AliasChoices("DATABASE_URL", "COMPUTEMATCH_DATABASE_URL"),
    )
    # Accepted as an operator key when set (set-up and demos); never logged.
    operator_key: SecretStr | None = None
    docs_enabled: bool = True
    max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)
    max_sync_batch: int = Field(10_000, ge=1)
    quote_ttl_seconds: int = Field(900, ge=10)
    max_open_quotes_per_enterprise: int = Field(200, ge=1)
    max_open_requests_per_enterprise: int = Field(500, ge=1)
    db_pool_size: int = Field(10, ge=1)
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
