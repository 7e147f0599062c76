from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

SLUG = r"^[a-z0-9][a-z0-9-]{1,63}$"


class AcceleratorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG, examples=["huawei-ascend-910b"])
    vendor: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    domestic: StrictBool = Field(description="Designed by a Chinese vendor (国产算力)")
    memory_gb: StrictInt = Field(gt=0, le=4096)
    bf16_tflops: StrictFloat = Field(gt=0, le=100_000, description="Dense BF16, vendor figure")
    source: str = Field(min_length=1, max_length=2000)


class AcceleratorUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str | None = Field(None, min_length=1, max_length=100)
    model: str | None = Field(None, min_length=1, max_length=100)
    domestic: StrictBool | None = None
    memory_gb: StrictInt | None = Field(None, gt=0, le=4096)
    bf16_tflops: StrictFloat | None = Field(None, gt=0, le=100_000)
    source: str | None = Field(None, min_length=1, max_length=2000)


class AcceleratorOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    vendor: str
    model: str
    domestic: bool
    memory_gb: int
    bf16_tflops: float
    source: str
    created_at: datetime
    updated_at: datetime
