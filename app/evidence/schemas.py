from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class EvidenceOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "evd_019ae5b2c4d1a1b2c3d4e5f6a7b8",
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "media_type": "application/pdf",
                    "size_bytes": 182044,
                    "filename": "invoice-24332000000012345678.pdf",
                    "uploaded_at": "2026-05-03T08:00:00Z",
                }
            ]
        },
    )

    id: str
    sha256: str = Field(description="Hex SHA-256 of the bytes")
    media_type: str = Field(description="application/pdf, image/png or image/jpeg")
    size_bytes: int
    filename: str
    uploaded_at: datetime
