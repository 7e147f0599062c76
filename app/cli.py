"""Operator commands: `python -m app.cli --help` (installed as `computematch`)."""

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from app.config import get_settings
from app.core.db import Database, is_sqlite
from app.ops.csv_io import Kind

# A failure is one line on stderr saying what to do (see `explain`), exit status 1; the
# traceback only with -v.
cli = typer.Typer(
    help="computematch operator commands", no_args_is_help=True, pretty_exceptions_enable=False
)
_verbose = False


@cli.callback()
def options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log business events (JSON) to stderr; tracebacks of failures"
        ),
    ] = False,
) -> None:
    """Operate a computematch database: keys, CSV import and export, reports, checks."""
    from app.core.logging import configure_logging

    global _verbose
    _verbose = verbose
    configure_logging(logging.INFO if verbose else logging.WARNING, get_settings().log_format)


class CliError(Exception):
    """A failure whose message already says what to do."""


def _db() -> Database:
    url = get_settings().database_url
    if is_sqlite(url):
        # SQLite would create an empty file (and its directory) and then fail on the
        # first table: say where the database was looked for instead.
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).is_file():
            raise CliError(
                f"no database at {Path(path).resolve()}: create it with `make migrate` "
                "(or `alembic upgrade head` in the project directory), or set DATABASE_URL"
            )
    return Database(url)


def _where(url: str) -> str:
    """The database as a person names it, without its password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(Path(parsed.database or "").resolve())
    return parsed.render_as_string(hide_password=True)


def explain(exc: BaseException) -> str:
    """One line: what went wrong and what to do about it."""
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

    text = str(getattr(exc, "orig", None) or exc)
    if isinstance(exc, CliError):
        return text
    if isinstance(exc, ValidationError):  # of the settings: name the variable at fault
        messages = []
        for error in exc.errors():
            msg = str(error["msg"]).removeprefix("Value error, ")
            name = str(error["loc"][0]) if error["loc"] else ""
            variable = name if name.isupper() else f"COMPUTEMATCH_{name.upper()}"
            messages.append(msg if not name or variable in msg else f"{variable}: {msg}")
        return "; ".join(messages)
    try:
        where = _where(get_settings().database_url)
    except Exception:
        where = "DATABASE_URL"
    if isinstance(exc, OperationalError | ProgrammingError) and (
        "no such table" in text or ("relation" in text and "does not exist" in text)
    ):
        return (
            f"the database at {where} has no tables yet: run `make migrate` (or "
            "`alembic upgrade head` in the project directory, with the same DATABASE_URL)"
        )
    if isinstance(exc, ModuleNotFoundError) and exc.name in {"psycopg", "psycopg2"}:
        return "DATABASE_URL needs the asyncpg driver: write postgresql+asyncpg://…"
    if isinstance(exc, DBAPIError | OSError):
        return f"cannot use the database at {where}: {text.splitlines()[0] if text else exc!r}"
    return f"{type(exc).__name__}: {text or 'unexpected failure'} (run with -v for the traceback)"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def _progress(label: str, length: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (shown on a terminal), fed with counts of rows done."""
    with typer.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


@contextmanager
def _open_out(path: str) -> Iterator[IO[str]]:
    if path == "-":
        yield sys.stdout
    else:
        with open(path, "w", newline="", encoding="utf-8") as stream:
            yield stream


@cli.command("create-key")
def create_key(
    role: Annotated[str, typer.Option(help="operator, provider or enterprise")] = "operator",
    provider_id: Annotated[str | None, typer.Option()] = None,
    enterprise_id: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create an API key and print its secret (shown this once)."""
    from app.auth import service as auth_service
    from app.auth.schemas import ApiKeyCreate

    if role == "provider" and provider_id is None:
        raise _fail("a provider key needs --provider-id PROVIDER_ID", 2)
    if role == "enterprise" and enterprise_id is None:
        raise _fail("an enterprise key needs --enterprise-id ENTERPRISE_ID", 2)
    try:
        payload = ApiKeyCreate(
            role=role, provider_id=provider_id, enterprise_id=enterprise_id, name=name
        )
    except ValidationError as exc:
        flags = {
            "role": "--role",
            "provider_id": "--provider-id",
            "enterprise_id": "--enterprise-id",
        }
        messages = [
            f"{flags.get(str(e['loc'][0]), '--' + str(e['loc'][0])) + ': ' if e['loc'] else ''}"
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise _fail(
            "; ".join(messages)
            .replace("provider_id", "--provider-id")
            .replace("enterprise_id", "--enterprise-id"),
            2,
        ) from None

    async def run() -> tuple[str, str]:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                from app.core.db import begin_write
                from app.ops.csv_io import OPERATOR

                await begin_write(session)
                key, secret = await auth_service.create_key(session, OPERATOR, payload)
                await session.commit()
                return key.id, secret
        finally:
            await db.dispose()

    try:
        key_id, secret = asyncio.run(run())
    except Exception as exc:  # a domain error: say it plainly
        raise _fail(explain(exc)) from None
    # The secret alone on stdout (KEY=$(computematch create-key)); its id, for revoke-key, aside.
    typer.echo(f"key id: {key_id} (the secret below is shown this once)", err=True)
    typer.echo(secret)


@cli.command("revoke-key")
def revoke_key(key_id: Annotated[str, typer.Argument(help="The key's id (key_...)")]) -> None:
    """Revoke an API key: requests with it get 401 at once."""
    from app.auth import service as auth_service
    from app.core.db import begin_write
    from app.core.errors import AppError
    from app.ops.csv_io import OPERATOR

    async def run() -> None:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                await begin_write(session)
                await auth_service.revoke_key(session, OPERATOR, key_id)
                await session.commit()
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except AppError as exc:
        raise _fail(str(exc.detail or exc.title)) from None
    typer.echo(f"revoked {key_id}")


@cli.command("import-csv")
def import_csv(
    kind: Annotated[Kind, typer.Argument(help="What the file holds")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A CSV file")
    ],
    refused: Annotated[
        Path | None,
        typer.Option(
            help="Where refused rows go, with a reason column [default: FILE.refused.csv]"
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Check every row and report, but write nothing")
    ] = False,
) -> None:
    """Import providers, listings or offers from CSV (columns: the API's field names).

    Valid rows are created or updated in one transaction; rows that break a rule are
    refused and written to the refused file with the reason. Exit status: 0 all
    imported, 3 imported with refused rows, 1 nothing imported (file or database error).
    """
    from app.core.db import begin_write
    from app.ops import csv_io

    try:
        with open(file, newline="", encoding="utf-8-sig") as stream:
            header, rows = csv_io.read_rows(kind, stream)
    except (csv_io.CsvFileError, UnicodeDecodeError) as exc:
        raise _fail(f"{file}: {exc}; nothing was imported", 2) from None
    settings = get_settings()

    async def run(progress: Callable[[int], None]) -> csv_io.ImportResult:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                await begin_write(session)
                result = await csv_io.import_rows(
                    session, kind, rows, max_batch=settings.max_sync_batch, progress=progress
                )
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
                return result
        finally:
            await db.dispose()

    try:
        with _progress(f"Importing {kind.value}", len(rows)) as progress:
            result = asyncio.run(run(progress))
    except Exception as exc:
        raise _fail(f"the import failed and nothing was imported: {explain(exc)}") from None
    typer.echo(("dry run, nothing written: " if dry_run else "") + result.summary())
    if result.refused:
        target = refused or file.with_name(file.stem + ".refused.csv")
        with open(target, "w", newline="", encoding="utf-8") as stream:
            csv_io.write_refused(stream, header, result.refused)
        for refusal in result.refused[:10]:
            typer.echo(f"  line {refusal.row.line}: {refusal.reason}", err=True)
        if len(result.refused) > 10:
            typer.echo(f"  ... and {len(result.refused) - 10} more", err=True)
        typer.echo(f"refused rows, with the reason, written to {target}")
        raise typer.Exit(3)


@cli.command("export-csv")
def export_csv(
    kind: Annotated[Kind, typer.Argument(help="What to export")],
    file: Annotated[str, typer.Argument(help="A CSV file to write, or - for stdout")],
) -> None:
    """Export providers, listings or offers as CSV, in the columns import-csv reads."""
    from app.ops import csv_io

    async def run(stream: IO[str]) -> int:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                return await csv_io.export_csv(session, kind, stream)
        finally:
            await db.dispose()

    with _open_out(file) as stream:
        count = asyncio.run(run(stream))
    if file != "-":
        typer.echo(f"{count} {kind.value} written to {file}")


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"


@cli.command("voucher-report")
def voucher_report(
    year: Annotated[
        int | None, typer.Option(min=2000, max=2100, help="[default: this year, Asia/Shanghai]")
    ] = None,
    format: Annotated[ReportFormat, typer.Option("--format", "-f")] = ReportFormat.table,
    top: Annotated[int, typer.Option(min=0, max=1000, help="Top enterprises per program")] = 5,
    output: Annotated[str, typer.Option("--output", "-o", help="File, or - for stdout")] = "-",
) -> None:
    """Compute vouchers per program and year: budget, used, remaining, top enterprises."""
    from app.core.timeutil import today_shanghai
    from app.ops import reports

    the_year = year or today_shanghai().year

    async def run() -> list[reports.ProgramReport]:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                return await reports.voucher_report(session, the_year, top)
        finally:
            await db.dispose()

    found = asyncio.run(run())
    with _open_out(output) as stream:
        if format is ReportFormat.csv:
            reports.write_csv(stream, found)
        else:
            _print_report(stream, found, the_year)


def _print_report(stream: IO[str], found: Any, year: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from app.core.money import format_money

    console = Console(file=stream, width=None if stream.isatty() else 140)

    def money(value: Any) -> str:
        return "no budget" if value is None else format_money(value)

    table = Table(title=f"Compute vouchers {year}", title_justify="left")
    for name in ("program", "status", "budget", "reserved", "settled", "used", "remaining"):
        table.add_column(name, justify="left" if name in ("program", "status") else "right")
    table.add_column("used %", justify="right")
    table.add_column("enterprises", justify="right")
    for r in found:
        share = "" if not r.budget else f"{r.used / r.budget * 100:.1f}"
        table.add_row(
            r.program_id,
            r.status,
            money(r.budget),
            money(r.reserved),
            money(r.settled),
            money(r.used),
            money(r.remaining),
            share,
            str(r.enterprises),
        )
    console.print(table)
    for r in found:
        if not r.top:
            continue
        top = Table(title=f"{r.program_id}: top enterprises", title_justify="left")
        for name in ("#", "enterprise", "name", "region", "reserved", "settled", "used"):
            top.add_column(
                name, justify="right" if name in ("#", "reserved", "settled", "used") else "left"
            )
        for rank, e in enumerate(r.top, start=1):
            top.add_row(
                str(rank),
                e.enterprise_id,
                e.name,
                e.region_code,
                money(e.reserved),
                money(e.settled),
                money(e.used),
            )
        console.print(top)


@cli.command("openapi")
def openapi() -> None:
    """Print the OpenAPI document generated from the app."""
    from app.main import create_app

    document = create_app().openapi()
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


@cli.command("demo-data")
def demo_data(
    if_empty: Annotated[bool, typer.Option(help="Do nothing if providers exist")] = False,
    providers: Annotated[int, typer.Option(min=1, max=5000)] = 300,
    offers_per_provider: Annotated[int, typer.Option(min=1, max=100)] = 12,
    enterprises: Annotated[int, typer.Option(min=1, max=5000)] = 60,
    seed: Annotated[int, typer.Option()] = 2026,
) -> None:
    """Fill an empty database with a realistic Hangzhou market."""
    from app.demo import load_demo_market

    summary = asyncio.run(
        load_demo_market(
            _db(),
            providers=providers,
            offers_per_provider=offers_per_provider,
            enterprises=enterprises,
            seed=seed,
            if_empty=if_empty,
        )
    )
    typer.echo(summary)


@cli.command("check-invariants")
def check_invariants() -> None:
    """Prove capacity and the voucher ledger consistent; exit 1 and say what is wrong if not."""
    from app.ops.invariants import check

    async def run() -> list[str]:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                return await check(session)
        finally:
            await db.dispose()

    problems = asyncio.run(run())
    for problem in problems:
        typer.echo(f"BROKEN: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(
        "all invariants hold: no offer overbooked, no cap or budget exceeded, "
        "every order's ledger entries add up"
    )


# The limits uvicorn keeps itself, for when nothing stands in front of it; in production
# a proxy stands in front (deploy/nginx.conf, README), which also bounds how long a
# client may take to send its request's head, which uvicorn cannot.
MAX_HEADER_BYTES = 16 * 1024  # a request's line and headers: far above any client's
KEEP_ALIVE_SECONDS = 5  # an idle connection is closed after this
LIMIT_CONCURRENCY = 1000  # connections and requests a worker takes on; past them, 503


def uvicorn_options(*, limit_concurrency: int = LIMIT_CONCURRENCY) -> dict[str, Any]:
    """uvicorn's settings at the edge. h11, because it bounds a request's head
    (`h11_max_incomplete_event_size`; httptools, uvicorn's faster default, accepted a
    head of 8 MB). The Dockerfile passes the same as command-line flags."""
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": limit_concurrency,
    }


def uvicorn_flags(*, limit_concurrency: int = LIMIT_CONCURRENCY) -> list[str]:
    """`uvicorn_options` as uvicorn's command-line flags (the Dockerfile's)."""
    flags: list[str] = []
    for name, value in uvicorn_options(limit_concurrency=limit_concurrency).items():
        flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


@cli.command("claims-report")
def claims_report(
    program_id: Annotated[str, typer.Argument(help="The program's id")],
    year: Annotated[int, typer.Option(help="The voucher year")],
    export: Annotated[
        str | None, typer.Option(help="Also write the claimed order parts as CSV here (- : stdout)")
    ] = None,
) -> None:
    """A program's year of claims: budget to payment, by district, origin, payer and
    enterprise (JSON), and optionally the export of every claimed order part."""
    from app.claims import reports
    from app.core.security import Principal

    operator = Principal(role="operator", key_id="cli")

    async def run() -> dict[str, Any]:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                report = await reports.program_report(session, operator, program_id, year)
                if export is not None:
                    out = sys.stdout.buffer if export == "-" else open(export, "wb")
                    try:
                        async for chunk in reports.csv_stream(
                            reports.export_pages(session, operator, program_id, year)
                        ):
                            out.write(chunk)
                    finally:
                        if out is not sys.stdout.buffer:
                            out.close()
                return report
        finally:
            await db.dispose()

    from app.core.errors import AppError

    try:
        report = asyncio.run(run())
    except AppError as error:
        raise _fail(str(error.detail or error.title)) from None
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2), err=export == "-")


@cli.command("verify-chain")
def verify_chain() -> None:
    """Recompute the hash chain of claim events; exit 1 naming the first event that
    does not hold."""
    from app.claims import chain

    async def run() -> tuple[int, Any]:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                return await chain.verify(session)
        finally:
            await db.dispose()

    count, broken = asyncio.run(run())
    if broken is not None:
        typer.echo(f"BROKEN: claim event {broken.seq}: {broken.why}", err=True)
        raise typer.Exit(1)
    typer.echo(f"the chain of {count} claim events holds")


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
    limit_concurrency: Annotated[
        int, typer.Option(min=1, help="Connections and requests per worker; past them, 503")
    ] = LIMIT_CONCURRENCY,
) -> None:
    """Serve the API, printing the operator key to use."""
    import uvicorn

    settings = get_settings()
    if settings.operator_key is not None:
        typer.echo("Operator key: the value of COMPUTEMATCH_OPERATOR_KEY")
    else:
        from app.demo import rotate_demo_operator_key, rotate_demo_reviewer_key

        secret, revoked = asyncio.run(rotate_demo_operator_key(_db()))
        if revoked:
            typer.echo(f"(the demo operator key of the last start is revoked: {revoked[0]})")
        typer.echo(f"Operator key (shown once): {secret}")
        reviewer = asyncio.run(rotate_demo_reviewer_key(_db()))
        if reviewer is not None:
            typer.echo(
                f"Reviewer key of binjiang-compute-2025 (滨江区经信局, shown once): {reviewer[0]}"
            )
    typer.echo(f"Serving on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    typer.echo(
        f"Voucher console: http://{host}:{port}/console/ (sign in with a reviewer or operator key)"
    )
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        **uvicorn_options(limit_concurrency=limit_concurrency),
    )


def main() -> None:
    try:
        cli()
    except Exception as exc:
        if _verbose:
            raise
        typer.echo(f"error: {explain(exc)}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
