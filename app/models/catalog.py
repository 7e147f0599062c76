from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base
from app.models.mixins import Timestamps, Versioned


class Accelerator(Timestamps, Versioned, Base):
    __tablename__ = "accelerators"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    domestic: Mapped[bool] = mapped_column(Boolean)
    memory_gb: Mapped[int] = mapped_column(Integer)
    # A hardware figure, not money: a float is exact enough for ranking by compute.
    bf16_tflops: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(Text)
    # Figures for comparing across models (market.md), each optional: null where
    # nobody published one.
    fp16_tflops: Mapped[float | None] = mapped_column(Float)
    int8_tops: Mapped[float | None] = mapped_column(Float)
    memory_bandwidth_gbps: Mapped[float | None] = mapped_column(Float)
    # Per workload, relative to nvidia-a100-sxm-80gb = "1.00": {"training": "0.95", ...}.
    perf_index: Mapped[dict[str, str] | None] = mapped_column(JSON)
    perf_source: Mapped[str | None] = mapped_column(Text)
