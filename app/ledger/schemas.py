from pydantic import BaseModel, ConfigDict, Field

from app.core.money import Money
from app.subsidies.schemas import ProgramStatus


class VoucherUsageItem(BaseModel):
    program_id: str
    status: ProgramStatus = Field(
        description="The program's status: only an `active` program pays new orders. A "
        "`draft` is listed only while this enterprise has a balance under it"
    )
    cap: Money | None = Field(description="This enterprise's annual cap (null: none)")
    reserved: Money = Field(description="Held for orders not yet settled")
    settled: Money
    remaining: Money | None = Field(description="cap − reserved − settled (null: no cap)")


class VoucherUsage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enterprise_id": "ent_01a2014889e26d55515199314b89",
                    "year": 2026,
                    "items": [
                        {
                            "program_id": "binjiang-compute-2025",
                            "status": "active",
                            "cap": "20000000.00",
                            "reserved": "0.00",
                            "settled": "300000.00",
                            "remaining": "19700000.00",
                        },
                        {
                            "program_id": "hz-city-compute-2024",
                            "status": "active",
                            "cap": "8000000.00",
                            "reserved": "0.00",
                            "settled": "0.00",
                            "remaining": "8000000.00",
                        },
                    ],
                }
            ]
        }
    )

    enterprise_id: str
    year: int
    items: list[VoucherUsageItem]
