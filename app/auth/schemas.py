from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Role(StrEnum):
    operator = "operator"
    provider = "provider"
    enterprise = "enterprise"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    provider_id: str | None = Field(None, max_length=40)
    enterprise_id: str | None = Field(None, max_length=40)
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_subject(self) -> "ApiKeyCreate":
        if self.role == Role.provider and (not self.provider_id or self.enterprise_id):
            raise ValueError("a provider key needs provider_id (and no enterprise_id)")
        if self.role == Role.enterprise and (not self.enterprise_id or self.provider_id):
            raise ValueError("an enterprise key needs enterprise_id (and no provider_id)")
        if self.role == Role.operator and (self.provider_id or self.enterprise_id):
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
