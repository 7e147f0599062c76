"""`make run` as a person restarts it: one live demo operator key, the same first
demo request named again, a Makefile whose .PHONY targets exist, a README that says
how to change the address."""

import re
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select

from app.demo import DEMO_KEY_NAMES, rotate_demo_operator_key
from app.models import ApiKey
from tests.conftest import ROOT
from tests.factories import OPERATOR, bearer
from tests.ops.conftest import Cli


async def live_demo_keys(db: Any) -> list[str]:
    async with db.sessionmaker() as session:
        return list(
            await session.scalars(
                select(ApiKey.id).where(
                    ApiKey.name.in_(DEMO_KEY_NAMES), ApiKey.revoked_at.is_(None)
                )
            )
        )


async def test_each_start_revokes_the_last_demo_key(client: AsyncClient, db: Any) -> None:
    own = await client.post(
        "/v1/api-keys", json={"role": "operator", "name": "procurement desk"}, headers=OPERATOR
    )
    assert own.status_code == 201, own.text
    first, revoked = await rotate_demo_operator_key(db)
    assert revoked == []
    assert (await client.get("/v1/offers", headers=bearer(first))).status_code == 200
    second, revoked = await rotate_demo_operator_key(db)
    third, revoked_again = await rotate_demo_operator_key(db)
    assert len({first, second, third}) == 3
    assert len(revoked) == 1
    assert len(revoked_again) == 1
    assert revoked != revoked_again
    assert (await client.get("/v1/offers", headers=bearer(first))).status_code == 401
    assert (await client.get("/v1/offers", headers=bearer(second))).status_code == 401
    assert (await client.get("/v1/offers", headers=bearer(third))).status_code == 200
    assert len(await live_demo_keys(db)) == 1
    # A key made by hand is never the demo's to revoke.
    assert (await client.get("/v1/offers", headers=bearer(own.json()["key"]))).status_code == 200


async def test_keys_of_earlier_versions_are_revoked_too(client: AsyncClient, db: Any) -> None:
    from app.auth import service as auth_service
    from app.core.db import begin_write

    async with db.sessionmaker() as session:
        await begin_write(session)
        _, legacy = await auth_service.issue_key(session, role="operator", name="make run")
        await session.commit()
    secret, revoked = await rotate_demo_operator_key(db)
    assert len(revoked) == 1
    assert (await client.get("/v1/offers", headers=bearer(legacy))).status_code == 401
    assert (await client.get("/v1/offers", headers=bearer(secret))).status_code == 200


async def test_a_restart_names_the_same_first_request(run: Cli) -> None:
    loaded = await run(
        "demo-data", "--providers", "12", "--offers-per-provider", "2", "--enterprises", "6"
    )
    assert loaded.exit_code == 0, loaded.output
    first = re.search(r"first: (req_\w+)", loaded.stdout)
    assert first is not None, loaded.stdout
    again = await run("demo-data", "--if-empty")
    assert again.exit_code == 0, again.output
    assert "skipped" in again.stdout
    assert f"/v1/compute-requests/{first.group(1)}/matches" in again.stdout


def makefile() -> str:
    return (ROOT / "Makefile").read_text(encoding="utf-8")


def test_every_phony_target_exists() -> None:
    text = makefile()
    targets = set(re.findall(r"^([A-Za-z_][\w.-]*):(?!=)", text, flags=re.MULTILINE))
    phony = set(re.search(r"^\.PHONY:(.*)$", text, flags=re.MULTILINE).group(1).split())  # type: ignore[union-attr]
    assert phony
    assert phony <= targets, phony - targets
    # Every documented target is phony (none makes a file of its name).
    documented = set(re.findall(r"^([\w-]+):.*## ", text, flags=re.MULTILINE))
    assert documented <= phony, documented - phony


def test_the_readme_names_every_variable_the_makefile_reads() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    variables = set(re.findall(r"^([A-Z_]+) \?=", makefile(), flags=re.MULTILINE))
    assert {"HOST", "PORT"} <= variables
    for name in variables - {"PYTHON"}:
        assert f"`{name}`" in readme or f"{name}=" in readme, name
