from datetime import datetime
from decimal import Decimal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)

SLUG = r"^[a-z0-9][a-z0-9-]{1,63}$"
INDEX = r"^(0|[1-9][0-9]{0,2})\.[0-9]{2}$"
REFERENCE_ACCELERATOR = "nvidia-a100-sxm-80gb"


class PerfIndex(BaseModel):
    """Performance per workload relative to nvidia-a100-sxm-80gb = "1.00"; null: unknown."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"training": "1.00", "inference": "1.00"}]}
    )

    training: str | None = Field(None, pattern=INDEX, examples=["1.00"])
    inference: str | None = Field(None, pattern=INDEX, examples=["1.00"])

    @model_validator(mode="after")
    def _positive(self) -> "PerfIndex":
        for name in ("training", "inference"):
            value = getattr(self, name)
            if value is not None and Decimal(value) <= 0:
                raise ValueError(f"{name} must be above 0.00; leave it null when unknown")
        return self


class Figures(BaseModel):
    """The optional figures for comparing across models, shared by create and update."""

    fp16_tflops: StrictFloat | None = Field(None, gt=0, le=100_000, description="Dense FP16")
    int8_tops: StrictFloat | None = Field(None, gt=0, le=1_000_000, description="Dense INT8")
    memory_bandwidth_gbps: StrictFloat | None = Field(None, gt=0, le=1_000_000)
    perf_index: PerfIndex | None = None
    perf_source: str | None = Field(
        None,
        min_length=1,
        max_length=2000,
        description="The benchmark and where it was published, or 'vendor figure' and which",
    )


class AcceleratorCreate(Figures):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=SLUG, examples=["huawei-ascend-910b"])
    vendor: str = Field(min_length=1, max_length=100)
    model: str = Field(min_length=1, max_length=100)
    domestic: StrictBool = Field(description="Designed by a Chinese vendor (国产算力)")
    memory_gb: StrictInt = Field(gt=0, le=4096)
    bf16_tflops: StrictFloat = Field(gt=0, le=100_000, description="Dense BF16, vendor figure")
    source: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _sourced(self) -> "AcceleratorCreate":
        if self.perf_index is not None and self.perf_source is None:
            raise ValueError("perf_index needs perf_source: the benchmark or 'vendor figure'")
        return self


class AcceleratorUpdate(Figures):
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
    fp16_tflops: float | None = None
    int8_tops: float | None = None
    memory_bandwidth_gbps: float | None = None
    perf_index: PerfIndex | None = None
    perf_source: str | None = None
    created_at: datetime
    updated_at: datetime
