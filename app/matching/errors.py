"""The conflicts (409) of re-deriving a match for a quote that a client tells apart."""

from app.core.errors import Conflict


class OfferUnavailable(Conflict):
    reason = "offer_unavailable"


class NoCapacity(Conflict):
    reason = "capacity"
