from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

ProgramRef = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")]


class Role(StrEnum):
    operator = "operator"
    provider = "provider"
    enterprise = "enterprise"
    reviewer = "reviewer"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"role": "provider", "provider_id": "prv_01a201488973d54e4c06176fd239"},
                {"role": "enterprise", "enterprise_id": "ent_01a2014889e26d55515199314b89"},
                {"role": "operator", "name": "procurement desk"},
                {"role": "reviewer", "program_ids": ["binjiang-compute-2025"]},
            ]
        },
    )

    role: Role
    provider_id: str | None = Field(None, min_length=1, max_length=40)
    enterprise_id: str | None = Field(None, min_length=1, max_length=40)
    name: str | None = Field(None, max_length=200)
    program_ids: list[ProgramRef] | None = Field(
        None,
        min_length=1,
        max_length=100,
        description="A reviewer's programs: it sees and decides their claims only",
    )

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
        if self.role == Role.reviewer and (provider or enterprise or not self.program_ids):
            raise ValueError("a reviewer key needs program_ids (and no provider or enterprise)")
        if self.role != Role.reviewer and self.program_ids is not None:
            raise ValueError("only a reviewer key has program_ids")
        if self.program_ids is not None and len(set(self.program_ids)) != len(self.program_ids):
            raise ValueError("program_ids: duplicates are not allowed")
        return self


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    prefix: str = Field(description="The first characters of the key, to recognise it")
    provider_id: str | None
    enterprise_id: str | None
    name: str | None
    program_ids: list[str] = Field(description="A reviewer's programs (empty for other roles)")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret, shown this once; store it now")
