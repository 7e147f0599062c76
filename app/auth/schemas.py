from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Role(StrEnum):
    operator = "operator"
    provider = "provider"
    enterprise = "enterprise"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "provider", "provider_id": "prv_01a201488973d54e4c06176fd239"},
                {"role": "enterprise", "enterprise_id": "ent_01a2014889e26d55515199314b89"},
                {"role": "operator", "name": "procurement desk"},
            ]
        },
    )

    role: Role
    provider_id: str | None = Field(None, min_length=1, max_length=40)
    enterprise_id: str | None = Field(None, min_length=1, max_length=40)
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_subject(self) -> "ApiKeyCreate":
        # `is None`, not truthiness: an empty id is refused by min_length, never taken as absent.
        provider, enterprise = self.provider_id is not None, self.enterprise_id is not None
        if self.role == Role.provider and (not provider or enterprise):
            raise ValueError("a provider key needs provider_id (and no enterprise_id)")
        if self.role == Role.enterprise and (not enterprise or provider):
            raise ValueError("an enterprise key needs enterprise_id (and no provider_id)")
        if self.role == Role.operator and (provider or enterprise):
            raise ValueError("an operator key is bound to no provider or enterprise")
        return self


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    prefix: str = Field(description="The first characters of the key, to recognise it")
    provider_id: str | None
    enterprise_id: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret, shown this once; store it now")
