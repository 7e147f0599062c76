"""ORM tables, one module per aggregate; importing this registers them all."""

from app.models.api_key import ApiKey
from app.models.audit import AuditEntry
from app.models.bid import Bid
from app.models.catalog import Accelerator
from app.models.claim import (
    ClaimChainHead,
    ClaimEvent,
    ClaimEvidence,
    ClaimPart,
    ClaimReview,
    Disbursement,
    Evidence,
    VoucherClaim,
)
from app.models.compute_request import ComputeRequest
from app.models.enterprise import CapRelaxation, Enterprise
from app.models.idempotency import IdempotencyRecord
from app.models.ledger import BudgetUsage, LedgerEntry
from app.models.offer import Offer
from app.models.order import Order, OrderPart, PricePaidDay, Quote
from app.models.provider import Listing, Provider, ProviderList
from app.models.rate_limit import RateLimitCounter
from app.models.status import (
    OfferStatus,
    OrderStatus,
    ProgramStatus,
    ProviderStatus,
    RequestStatus,
)
from app.models.subsidy import SubsidyProgram

__all__ = [
    "Accelerator",
    "ApiKey",
    "AuditEntry",
    "Bid",
    "BudgetUsage",
    "CapRelaxation",
    "ClaimChainHead",
    "ClaimEvent",
    "ClaimEvidence",
    "ClaimPart",
    "ClaimReview",
    "ComputeRequest",
    "Disbursement",
    "Enterprise",
    "Evidence",
    "IdempotencyRecord",
    "LedgerEntry",
    "Listing",
    "Offer",
    "OfferStatus",
    "Order",
    "OrderPart",
    "OrderStatus",
    "PricePaidDay",
    "ProgramStatus",
    "Provider",
    "ProviderList",
    "ProviderStatus",
    "Quote",
    "RateLimitCounter",
    "RequestStatus",
    "SubsidyProgram",
    "VoucherClaim",
]
