from pydantic import BaseModel, Field

from app.core.money import Money


class VoucherUsageItem(BaseModel):
    program_id: str
    cap: Money | None = Field(description="This enterprise's annual cap (null: none)")
    reserved: Money = Field(description="Held for orders not yet settled")
    settled: Money
    remaining: Money | None = Field(description="cap − reserved − settled (null: no cap)")


class VoucherUsage(BaseModel):
    enterprise_id: str
    year: int
    items: list[VoucherUsageItem]
