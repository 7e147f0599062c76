"""Operator commands: `python -m app.cli --help` (installed as `computematch`)."""

import asyncio
import json
import sys
from typing import Annotated

import typer

from app.config import get_settings
from app.core.db import Database

cli = typer.Typer(help="computematch operator commands", no_args_is_help=True)


def _db() -> Database:
    return Database(get_settings().database_url)


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

    try:
        payload = ApiKeyCreate(
            role=role, provider_id=provider_id, enterprise_id=enterprise_id, name=name
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None

    async def run() -> str:
        db = _db()
        try:
            async with db.sessionmaker() as session:
                from app.core.db import begin_write
                from app.core.security import Principal

                await begin_write(session)
                _, secret = await auth_service.create_key(
                    session, Principal(role="operator", key_id="cli"), payload
                )
                await session.commit()
                return secret
        finally:
            await db.dispose()

    try:
        typer.echo(asyncio.run(run()))
    except Exception as exc:  # a domain error: say it plainly
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


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
    from app.ledger.invariants import check

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


@cli.command("serve")
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Serve the API, printing the operator key to use."""
    import uvicorn

    settings = get_settings()
    if settings.operator_key is not None:
        typer.echo("Operator key: the value of COMPUTEMATCH_OPERATOR_KEY")
    else:
        from app.auth import service as auth_service
        from app.core.db import begin_write

        async def make_key() -> str:
            db = _db()
            try:
                async with db.sessionmaker() as session:
                    await begin_write(session)
                    _, secret = await auth_service.issue_key(
                        session, role="operator", name="make run"
                    )
                    await session.commit()
                    return secret
            finally:
                await db.dispose()

        typer.echo(f"Operator key (shown once): {asyncio.run(make_key())}")
    typer.echo(f"Serving on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, log_level="warning")


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
