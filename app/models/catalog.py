from sqlalchemy import Boolean, Float, Integer, String, Text
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
