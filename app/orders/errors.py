"""The conflicts (409) of placing an order, one class per `reason` a client tells apart."""

from app.core.errors import Conflict


class OrderConflict(Conflict):
    type = "order-conflict"
    title = "The order cannot be placed as quoted"


class QuoteExpired(OrderConflict):
    reason = "quote_expired"


class RequestClosed(OrderConflict):
    reason = "request_closed"


class QuoteUsed(OrderConflict):
    reason = "quote_used"


class OfferUnavailable(OrderConflict):
    reason = "offer_unavailable"


class CapacityTaken(OrderConflict):
    reason = "capacity"


class SubsidyChanged(OrderConflict):
    reason = "subsidy"


class WindowStarted(OrderConflict):
    reason = "window_started"
