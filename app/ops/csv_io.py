"""CSV import and export of providers, listings and offers, for `computematch import-csv`.

Columns are the API's field names, so that a file reads like the JSON the API
takes and answers (`workloads` as `training;inference`). Rows are checked with
the API's own schemas and written through the domain services, so the CLI and
the API apply the same rules: credit codes, the status machine, listings that
must not overlap, the domestic flag from the catalog, capacity held by orders.

One file is one transaction. A row that breaks a rule is refused with the
reason and the valid rows are imported; a database failure imports nothing.
Each row's writes run in a savepoint, so a refused row leaves no trace.
"""

import csv
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import AppError
from app.core.money import format_money
from app.core.security import Principal
from app.core.timeutil import today_shanghai
from app.models import Listing, Offer, Provider
from app.models.status import ProviderStatus
from app.offers import service as offer_service
from app.offers.schemas import OfferFields, OfferStatus, OfferSync
from app.providers import service as provider_service
from app.providers.schemas import ListingCreate, ProviderCreate, ProviderUpdate

OPERATOR = Principal(role="operator", key_id="cli")
Progress = Callable[[int], None]


class Kind(StrEnum):
    providers = "providers"
    listings = "listings"
    offers = "offers"


# What each kind's file holds: the columns written by export, in order; the ones an
# import reads; the ones it requires. Other exported columns (ids, timestamps) are
# read-only and ignored on import; `line` and `reason` (a refused file) are too.
EXPORT_COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.providers: (
        "id",
        "name",
        "kind",
        "unified_social_credit_code",
        "region_code",
        "status",
        "created_at",
        "updated_at",
    ),
    Kind.listings: (
        "provider_id",
        "unified_social_credit_code",
        "list",
        "since",
        "until",
        "reference",
        "id",
        "created_at",
        "ended_at",
        "active",
    ),
    Kind.offers: (
        "id",
        "provider_id",
        "unified_social_credit_code",
        "external_id",
        "accelerator_id",
        "domestic",
        "cards_total",
        "price_per_card_hour",
        "available_from",
        "available_until",
        "min_hours",
        "region_code",
        "workloads",
        "free_trial_hours",
        "free_migration_support",
        "status",
        "cards_per_node",
        "interconnect",
        "network",
        "network_gbps",
        "software",
        "created_at",
        "updated_at",
    ),
}
IMPORTED_COLUMNS: dict[Kind, frozenset[str]] = {
    Kind.providers: frozenset(
        {"name", "kind", "unified_social_credit_code", "region_code", "status"}
    ),
    Kind.listings: frozenset(
        {"provider_id", "unified_social_credit_code", "list", "since", "until", "reference"}
    ),
    Kind.offers: frozenset(EXPORT_COLUMNS[Kind.offers]) - {"id", "created_at", "updated_at"},
}
REQUIRED_COLUMNS: dict[Kind, frozenset[str]] = {
    Kind.providers: frozenset({"name", "kind", "unified_social_credit_code", "region_code"}),
    Kind.listings: frozenset({"list", "since"}),
    Kind.offers: frozenset(
        {
            "external_id",
            "accelerator_id",
            "cards_total",
            "price_per_card_hour",
            "available_from",
            "available_until",
            "region_code",
        }
    ),
}
REFUSAL_COLUMNS = ("line", "reason")
# Listings and offers name their provider by id or by credit code (portable across databases).
PROVIDER_REFERENCE = ("provider_id", "unified_social_credit_code")


class CsvFileError(Exception):
    """The file as a whole cannot be imported (unreadable, wrong columns): nothing is."""


@dataclass
class Row:
    line: int
    cells: dict[str, str]


@dataclass
class Refusal:
    row: Row
    reason: str


@dataclass
class ImportResult:
    kind: Kind
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[Refusal] = field(default_factory=list)
    # Retired offers reopened by a row stating its status, counted apart from `updated`.
    reactivated: int = 0

    def refuse(self, row: Row, reason: str) -> None:
        self.refused.append(Refusal(row, reason))

    def summary(self) -> str:
        reactivated = f", {self.reactivated} reactivated" if self.reactivated else ""
        return (
            f"{self.kind.value}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.refused)} refused{reactivated}"
        )


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- reading


def read_rows(kind: Kind, stream: IO[str]) -> tuple[list[str], list[Row]]:
    """The header and the rows of a CSV file, after checking its columns."""
    reader = csv.DictReader(stream)
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise CsvFileError("the file is empty: the first line must name the columns")
    reader.fieldnames = header
    known = set(EXPORT_COLUMNS[kind]) | set(REFUSAL_COLUMNS)
    unknown = [name for name in header if name not in known]
    if unknown:
        raise CsvFileError(
            f"unknown column(s) {', '.join(unknown)}; a {kind.value} file may have: "
            f"{', '.join(EXPORT_COLUMNS[kind])}"
        )
    missing = sorted(REQUIRED_COLUMNS[kind] - set(header))
    if kind is not Kind.providers and not set(PROVIDER_REFERENCE) & set(header):
        missing.append("provider_id or unified_social_credit_code")
    if missing:
        raise CsvFileError(f"missing column(s): {', '.join(missing)}")
    rows = []
    try:
        for cells in reader:
            if None in cells:
                extra = cells.pop(None)
                if any(str(value).strip() for value in extra or []):
                    cells["__extra__"] = "x"
            rows.append(Row(reader.line_num, {k: (v or "").strip() for k, v in cells.items()}))
    except csv.Error as exc:
        raise CsvFileError(f"line {reader.line_num}: {exc}") from None
    return header, rows


def write_refused(stream: IO[str], header: Sequence[str], refused: Iterable[Refusal]) -> None:
    columns = [c for c in header if c not in REFUSAL_COLUMNS] + list(REFUSAL_COLUMNS)
    writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for refusal in refused:
        writer.writerow({**refusal.row.cells, "line": refusal.row.line, "reason": refusal.reason})


def _fields(kind: Kind, row: Row) -> dict[str, Any]:
    """The cells an import reads; an empty cell is left out, so the API's default applies."""
    if "__extra__" in row.cells:
        raise _Refused("the row has more cells than the header has columns")
    return {k: v for k, v in row.cells.items() if k in IMPORTED_COLUMNS[kind] and v != ""}


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _Refused(_validation_reason(exc)) from None


def _app_reason(exc: AppError) -> str:
    return str(exc.detail or exc.title)


# --------------------------------------------------------------------------- providers


async def _provider_index(session: AsyncSession) -> tuple[dict[str, Provider], dict[str, Provider]]:
    providers = list(await session.scalars(select(Provider)))
    return {p.id: p for p in providers}, {p.unified_social_credit_code: p for p in providers}


# How to reach a status a new provider cannot be created with: create, then one move.
_CREATE_THEN = {
    ProviderStatus.suspended: ProviderStatus.listed,
    ProviderStatus.rejected: ProviderStatus.pending,
    ProviderStatus.delisted: ProviderStatus.pending,
}


async def import_providers(
    session: AsyncSession, rows: Sequence[Row], progress: Progress | None = None
) -> ImportResult:
    result = ImportResult(Kind.providers)
    _, by_code = await _provider_index(session)
    seen: dict[str, int] = {}
    for row in rows:
        try:
            data = _fields(Kind.providers, row)
            payload = _validate(ProviderCreate, data)
            code = payload.unified_social_credit_code
            if code in seen:
                raise _Refused(f"unified_social_credit_code {code} repeats line {seen[code]}")
            seen[code] = row.line
            async with session.begin_nested():
                existing = by_code.get(code)
                if existing is None:
                    by_code[code] = await _create_provider(session, payload)
                    result.created += 1
                elif await _update_provider(session, existing, payload):
                    result.updated += 1
                else:
                    result.unchanged += 1
        except _Refused as exc:
            result.refuse(row, exc.reason)
        except AppError as exc:
            result.refuse(row, _app_reason(exc))
        if progress:
            progress(1)
    return result


async def _create_provider(session: AsyncSession, payload: ProviderCreate) -> Provider:
    target = payload.status or ProviderStatus.pending
    first = _CREATE_THEN.get(target, target)
    provider, _ = await provider_service.create_provider(
        session, OPERATOR, payload.model_copy(update={"status": first})
    )
    if first != target:
        provider = await provider_service.change_status(
            session, OPERATOR, provider, target, "CSV import"
        )
    return provider


async def _update_provider(
    session: AsyncSession, provider: Provider, payload: ProviderCreate
) -> bool:
    changes = {
        name: getattr(payload, name)
        for name in ("name", "kind", "region_code")
        if getattr(payload, name) != getattr(provider, name)
    }
    status_change = payload.status is not None and payload.status.value != provider.status
    if not changes and not status_change:
        return False
    if status_change:
        assert payload.status is not None
        await provider_service.change_status(
            session, OPERATOR, provider, payload.status, "CSV import"
        )
    if changes:
        await provider_service.update_provider(
            session, OPERATOR, provider, ProviderUpdate(**changes)
        )
    return True


def _resolve_provider(
    row_fields: dict[str, Any], by_id: dict[str, Provider], by_code: dict[str, Provider]
) -> Provider:
    provider_id = row_fields.get("provider_id")
    code = row_fields.get("unified_social_credit_code")
    if code is not None:
        provider = by_code.get(code.upper())
        if provider is None:
            raise _Refused(f"no provider with unified_social_credit_code {code}")
        if provider_id is not None and provider_id in by_id and provider_id != provider.id:
            raise _Refused(
                f"provider_id {provider_id} and unified_social_credit_code {code} "
                "name different providers"
            )
        return provider
    if provider_id is None:
        raise _Refused("name the provider: provider_id or unified_social_credit_code")
    found = by_id.get(provider_id)
    if found is None:
        raise _Refused(f"no provider {provider_id}")
    return found


# --------------------------------------------------------------------------- listings


async def import_listings(
    session: AsyncSession, rows: Sequence[Row], progress: Progress | None = None
) -> ImportResult:
    result = ImportResult(Kind.listings)
    by_id, by_code = await _provider_index(session)
    seen: dict[tuple[str, str, str, str], int] = {}
    for row in rows:
        try:
            data = _fields(Kind.listings, row)
            provider = _resolve_provider(data, by_id, by_code)
            payload = _validate(
                ListingCreate,
                {k: v for k, v in data.items() if k not in PROVIDER_REFERENCE},
            )
            key = (provider.id, payload.list, str(payload.since), str(payload.until))
            if key in seen:
                raise _Refused(f"the same listing is on line {seen[key]}")
            seen[key] = row.line
            # A row with ended_at is history: it matches an ended listing or is refused.
            ended = bool(row.cells.get("ended_at"))
            same = await session.scalar(
                select(Listing.id).where(
                    Listing.provider_id == provider.id,
                    Listing.list_id == payload.list,
                    Listing.since == payload.since,
                    Listing.until.is_(None)
                    if payload.until is None
                    else Listing.until == payload.until,
                    Listing.ended_at.is_not(None) if ended else Listing.ended_at.is_(None),
                )
            )
            if same is not None:
                result.unchanged += 1
            elif ended:
                raise _Refused(
                    "an ended listing is history and is not imported; "
                    "leave ended_at empty to grant it anew"
                )
            else:
                async with session.begin_nested():
                    await provider_service.grant_listing(session, OPERATOR, provider, payload)
                result.created += 1
        except _Refused as exc:
            result.refuse(row, exc.reason)
        except AppError as exc:
            result.refuse(row, _app_reason(exc))
        if progress:
            progress(1)
    return result


# --------------------------------------------------------------------------- offers


# The API takes JSON integers and booleans only (strict); a CSV cell is text, read here.
_INT_COLUMNS = frozenset(
    {"cards_total", "min_hours", "free_trial_hours", "cards_per_node", "network_gbps"}
)
_BOOL_CELLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _cell_int(value: str) -> int | str:
    text = value.strip()
    digits = text.removeprefix("-").removeprefix("+")
    return int(text) if digits.isascii() and digits.isdigit() else value


def _software_cell(value: str) -> list[dict[str, str]] | str:
    """ "cann=8.0.RC3;cuda=12.4" read as the API's list; anything else is left as text,
    so that validation refuses it with a reason."""
    items = []
    for part in (p.strip() for p in value.split(";")):
        if not part:
            continue
        stack, sep, version = part.partition("=")
        if not sep:
            return value
        items.append({"stack": stack.strip(), "version": version.strip()})
    return items


def software_cell(software: Sequence[dict[str, str]]) -> str:
    """An offer's software as one CSV cell: "cann=8.0.RC3;cuda=12.4"."""
    return ";".join(f"{s['stack']}={s['version']}" for s in software)


def _offer_fields(data: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in data.items() if k not in PROVIDER_REFERENCE}
    if "workloads" in fields:
        fields["workloads"] = [w.strip() for w in fields["workloads"].split(";") if w.strip()]
    if "software" in fields:
        fields["software"] = _software_cell(fields["software"])
    for name in _INT_COLUMNS & fields.keys():
        fields[name] = _cell_int(fields[name])
    for name in ("domestic", "free_migration_support"):
        if name in fields:
            fields[name] = _BOOL_CELLS.get(fields[name].strip().lower(), fields[name])
    return fields


async def import_offers(
    session: AsyncSession,
    rows: Sequence[Row],
    *,
    max_batch: int,
    progress: Progress | None = None,
) -> ImportResult:
    """Upsert offers by (provider, external_id) through the offers:sync service."""
    result = ImportResult(Kind.offers)
    by_id, by_code = await _provider_index(session)
    known = await offer_service.catalog(session)
    seen: dict[tuple[str, str], int] = {}
    batches: dict[str, list[tuple[Row, OfferFields]]] = {}
    retiring: list[tuple[Row, Provider, str]] = []
    for row in rows:
        try:
            data = _fields(Kind.offers, row)
            provider = _resolve_provider(data, by_id, by_code)
            fields = _offer_fields(data)
            key = (provider.id, fields.get("external_id", ""))
            if key in seen:
                raise _Refused(f"external_id {key[1]!r} of this provider repeats line {seen[key]}")
            seen[key] = row.line
            if fields.get("status") == OfferStatus.retired.value:
                retiring.append((row, provider, key[1]))
                continue
            offer = _validate(OfferFields, fields)
            offer_service.resolve_domestic(known, offer.accelerator_id, offer.domestic, [])
            if provider.status in (ProviderStatus.delisted, ProviderStatus.rejected):
                raise _Refused(f"provider {provider.id} is {provider.status}; it cannot offer")
            batches.setdefault(provider.id, []).append((row, offer))
        except _Refused as exc:
            result.refuse(row, exc.reason)
            if progress:
                progress(1)
        except AppError as exc:
            result.refuse(row, _app_reason(exc))
            if progress:
                progress(1)

    for provider_id, batch in batches.items():
        for start in range(0, len(batch), max_batch):
            await _sync_batch(session, provider_id, batch[start : start + max_batch], result)
            if progress:
                progress(len(batch[start : start + max_batch]))
    for row, provider, external_id in retiring:
        await _retire(session, row, provider, external_id, result)
        if progress:
            progress(1)
    return result


async def _sync(
    session: AsyncSession,
    provider_id: str,
    batch: Sequence[tuple[Row, OfferFields]],
    max_batch: int,
) -> tuple[int, int, int, int]:
    async with session.begin_nested():
        synced = await offer_service.sync_offers(
            session,
            OPERATOR,
            provider_id,
            OfferSync(offers=[offer for _, offer in batch]),
            max_batch,
        )
    return synced.created, synced.updated, synced.unchanged, synced.reactivated


async def _sync_batch(
    session: AsyncSession,
    provider_id: str,
    batch: Sequence[tuple[Row, OfferFields]],
    result: ImportResult,
) -> None:
    try:
        counts = [await _sync(session, provider_id, batch, len(batch))]
    except AppError:
        # One row breaks a rule the batch cannot (capacity held by live orders):
        # sync the rows one by one to refuse only that one.
        counts = []
        for row, offer in batch:
            try:
                counts.append(await _sync(session, provider_id, [(row, offer)], 1))
            except AppError as exc:
                result.refuse(row, _app_reason(exc))
    for created, updated, unchanged, reactivated in counts:
        result.created += created
        result.updated += updated
        result.unchanged += unchanged
        result.reactivated += reactivated


async def _retire(
    session: AsyncSession, row: Row, provider: Provider, external_id: str, result: ImportResult
) -> None:
    offer = await session.scalar(
        select(Offer).where(Offer.provider_id == provider.id, Offer.external_id == external_id)
    )
    if offer is None:
        result.refuse(row, "a retired offer that does not exist is not created; leave it out")
    elif offer.status == OfferStatus.retired.value:
        result.unchanged += 1
    else:
        try:
            async with session.begin_nested():
                await offer_service.retire_offer(session, OPERATOR, offer)
        except AppError as exc:
            result.refuse(row, _app_reason(exc))
        else:
            result.updated += 1


# --------------------------------------------------------------------------- export


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format_money(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


async def _export_rows(session: AsyncSession, kind: Kind) -> AsyncIterator[dict[str, Any]]:
    if kind is Kind.providers:
        for provider in await session.scalars(select(Provider).order_by(Provider.id)):
            yield {name: getattr(provider, name) for name in EXPORT_COLUMNS[kind]}
    elif kind is Kind.listings:
        today = today_shanghai()
        listings = (
            select(Listing, Provider.unified_social_credit_code)
            .join(Provider, Provider.id == Listing.provider_id)
            .order_by(Listing.provider_id, Listing.list_id, Listing.since, Listing.id)
        )
        for listing, code in await session.execute(listings):
            yield {
                "provider_id": listing.provider_id,
                "unified_social_credit_code": code,
                "list": listing.list_id,
                "since": listing.since,
                "until": listing.until,
                "reference": listing.reference,
                "id": listing.id,
                "created_at": listing.created_at,
                "ended_at": listing.ended_at,
                "active": listing.active_on(today),
            }
    else:
        offers = (
            select(Offer, Provider.unified_social_credit_code)
            .join(Provider, Provider.id == Offer.provider_id)
            .order_by(Offer.provider_id, Offer.external_id)
            .execution_options(yield_per=2000)
        )
        async for offer, code in await session.stream(offers):
            row = {name: getattr(offer, name, None) for name in EXPORT_COLUMNS[kind]}
            row["unified_social_credit_code"] = code
            row["software"] = software_cell(offer.software)
            yield row


async def export_csv(
    session: AsyncSession, kind: Kind, stream: IO[str], progress: Progress | None = None
) -> int:
    """Write every row of a kind; answers how many."""
    writer = csv.DictWriter(stream, fieldnames=EXPORT_COLUMNS[kind])
    writer.writeheader()
    count = 0
    async for row in _export_rows(session, kind):
        writer.writerow({k: _cell(v) for k, v in row.items()})
        count += 1
        if progress:
            progress(1)
    return count


async def import_rows(
    session: AsyncSession,
    kind: Kind,
    rows: Sequence[Row],
    *,
    max_batch: int,
    progress: Progress | None = None,
) -> ImportResult:
    if kind is Kind.providers:
        return await import_providers(session, rows, progress)
    if kind is Kind.listings:
        return await import_listings(session, rows, progress)
    return await import_offers(session, rows, max_batch=max_batch, progress=progress)
