"""The states a row's `status` column holds, named once: the models store them as their
text, the schemas answer them, and code compares with the members, never a literal."""

from enum import StrEnum


class OrderStatus(StrEnum):
    reserved = "reserved"
    completed = "completed"
    cancelled = "cancelled"


class RequestStatus(StrEnum):
    open = "open"
    cancelled = "cancelled"


class OfferStatus(StrEnum):
    active = "active"
    paused = "paused"
    retired = "retired"


class ProviderStatus(StrEnum):
    pending = "pending"
    listed = "listed"
    rejected = "rejected"
    suspended = "suspended"
    delisted = "delisted"


class ProgramStatus(StrEnum):
    active = "active"
    draft = "draft"
    retired = "retired"
