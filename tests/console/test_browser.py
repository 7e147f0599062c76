"""The console in a real browser (the system's Chromium driven by Playwright) against
the real server: sign in, read the pages, see a program's figures move.

Every test fails on a console error, a failed request, or any request leaving the
server (the browser context lets through only the server's own origin)."""

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.console.i18n import money
from tests.claims import helpers as claims_helpers
from tests.conftest import OPERATOR_KEY
from tests.console.data import build_market
from tests.console.test_pages import BINJIANG, YEAR
from tests.factories import bearer, create_request
from tests.live_server import LiveServer, live_server
from tests.orders.test_flow import quote_for

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Screenshots of every page go here when set (looked at by people, not by the tests).
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="no Chromium on this machine (apt-get install chromium)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # The suite's operator key, so that the API factories build state on this server.
    with live_server(
        tmp_path_factory.mktemp("console-live"),
        operator_key=OPERATOR_KEY,
        console_secret="console-test-secret-" + "x" * 16,
    ) as running:
        yield running


@dataclass
class Watch:
    """What a page did that it should not have."""

    origin: str
    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda r: (
                self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )

    def _failed(self, request: Any) -> None:
        # ERR_ABORTED: a load the browser cancelled itself because the page moved on (the
        # icon of a page left at once); a request to elsewhere is counted by the route.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url} {request.failure}")


@pytest.fixture
async def browser_page(server: LiveServer) -> AsyncIterator[tuple[Any, Watch]]:
    from playwright.async_api import async_playwright

    watch = Watch(server.base_url)
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        context = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})

        async def only_the_server(route: Any) -> None:
            if route.request.url.startswith(server.base_url + "/"):
                await route.continue_()
            else:
                watch.problems.append(f"left the server: {route.request.url}")
                await route.abort("blockedbyclient")

        await context.route("**/*", only_the_server)
        page = await context.new_page()
        watch.attach(page)
        try:
            yield page, watch
        finally:
            await context.close()
            await browser.close()
    assert watch.problems == [], watch.problems


async def shot(page: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


async def remaining_of(page: Any, program_id: str) -> str:
    text: str = await page.locator(f"#{program_id} [data-figure=remaining]").inner_text()
    return text.strip()


async def test_sign_in_read_every_page_and_see_the_figures_move(
    server: LiveServer, browser_page: tuple[Any, Watch]
) -> None:
    page, _ = browser_page
    async with AsyncClient(base_url=server.base_url, timeout=30) as api:
        market = await build_market(api, orders=4)

        await page.goto(server.base_url + "/console/")
        assert page.url.endswith("/console/login")
        await shot(page, "01-login")
        await page.fill("#api_key", OPERATOR_KEY)
        await page.click("button[type=submit]")
        await page.wait_for_url(server.base_url + "/console/")
        await page.goto(f"{server.base_url}/console/?year={YEAR}")
        assert await page.locator("h1").inner_text() == f"算力券项目 · {YEAR}"
        before = await remaining_of(page, BINJIANG)
        settled = sum(
            (
                Decimal(p["settled_subsidy"])
                for o in market.orders
                for p in o["parts"]
                if p["subsidy"]["program_id"] == BINJIANG
            ),
            Decimal(0),
        )
        assert before == money(Decimal("100000000.00") - settled)
        await shot(page, "02-programs")

        # One more Binjiang order: the remaining budget falls by its subsidy.
        enterprise, offer = market.enterprises[0], market.offers[0]
        request = await create_request(api, enterprise, cards=8, hours=100)
        quote = await quote_for(api, enterprise, request, offer)
        placed = await api.post(
            "/v1/orders", json={"quote_id": quote["id"]}, headers=bearer(enterprise["api_key"])
        )
        assert placed.status_code == 201, placed.text
        subsidy = Decimal(placed.json()["subsidy"]["amount"])
        assert subsidy > 0
        await page.reload()
        after = await remaining_of(page, BINJIANG)
        assert after == money(Decimal("100000000.00") - settled - subsidy)

    await page.click(f"#{BINJIANG} h2 a")
    await page.wait_for_url(f"**/console/programs/{BINJIANG}?year={YEAR}")
    assert "按区县" in await page.content()
    assert await page.locator("text=" + market.enterprises[0]["name"]).count() == 1
    await shot(page, "03-program")

    await page.click("nav >> text=市场价格")
    await page.wait_for_url("**/console/market")
    assert await page.locator("table.index tbody tr").count() >= 2
    await shot(page, "04-market")

    await page.click("text=English")
    await page.wait_for_url("**/console/market?lang=en")
    assert await page.locator("h1").inner_text() == "Market prices"
    await page.click("nav >> text=Programs")
    await page.wait_for_url("**/console/?lang=en")
    await shot(page, "05-programs-en")

    await page.click("text=Sign out")
    await page.wait_for_url("**/console/login?lang=en")
    await page.goto(server.base_url + "/console/market")
    assert page.url.endswith("/console/login")


async def test_an_enterprise_key_is_told_the_console_is_for_the_office(
    server: LiveServer, browser_page: tuple[Any, Watch]
) -> None:
    page, watch = browser_page
    async with AsyncClient(base_url=server.base_url, timeout=30) as api:
        market = await build_market(api, orders=0)
    await page.goto(server.base_url + "/console/login")
    await page.fill("#api_key", market.enterprises[0]["api_key"])
    await page.click("button[type=submit]")
    assert "管理台仅供算力券管理部门" in await page.locator(".error").inner_text()
    await shot(page, "06-login-refused")
    # The refusal is a 403 page (the browser logs it too): expected here.
    expected = (
        "HTTP 403",
        "console error: Failed to load resource: the server responded with a status of 403",
    )
    assert any(p.startswith("HTTP 403") for p in watch.problems)
    watch.problems[:] = [p for p in watch.problems if not p.startswith(expected)]


def _amount(text: str) -> Decimal:
    return Decimal(text.strip().removeprefix("¥").replace(",", ""))


async def test_a_reviewer_approves_and_pays_a_claim_and_the_figures_move(
    server: LiveServer, browser_page: tuple[Any, Watch]
) -> None:
    page, _ = browser_page
    async with AsyncClient(base_url=server.base_url, timeout=30) as api:
        provider, offer, enterprise = await claims_helpers.hz_market(api)
        order = await claims_helpers.settled_order(api, provider, offer, enterprise)
        documents = await claims_helpers.documents_for(api, enterprise, order)
        filed = await claims_helpers.file_claim(api, enterprise, [order], documents)
        assert filed.status_code == 201, filed.text
        claim = filed.json()
        key = await claims_helpers.reviewer(api, claims_helpers.PROGRAM)
    amount = Decimal(claim["amount"])
    assert amount > 0
    figures = f"#{claims_helpers.PROGRAM} [data-figure=%s]"

    await page.goto(server.base_url + "/console/login")
    await page.fill("#api_key", key["key"])
    await page.click("button[type=submit]")
    await page.wait_for_url(server.base_url + "/console/")
    await page.goto(f"{server.base_url}/console/?year={claim['year']}")
    approved_before = _amount(await page.locator(figures % "approved").inner_text())
    paid_before = _amount(await page.locator(figures % "paid").inner_text())

    await page.click("nav >> text=申领审核")
    await page.wait_for_url("**/console/claims?status=submitted")
    row = page.locator("table.queue tr", has_text=claim["id"])
    assert await row.locator("td.marks span.ok").count() == len(claim["checks"])
    await shot(page, "07-claims")
    await page.click(f"text={claim['id']}")
    await page.wait_for_url(f"**/console/claims/{claim['id']}")
    assert await page.locator("[data-figure=claim-status]").inner_text() == "待审核"
    await shot(page, "08-claim")

    await page.check("input[name=decision][value=approve]")
    await page.click("form[action$='/review'] button[type=submit]")
    await page.wait_for_url(f"**/console/claims/{claim['id']}")
    assert await page.locator("[data-figure=claim-status]").inner_text() == "已核定"
    await page.fill("#bank_reference", "BANK-2026-0001")
    await page.click("form[action$='/disbursements'] button[type=submit]")
    await page.wait_for_url(f"**/console/claims/{claim['id']}")
    assert await page.locator("[data-figure=claim-status]").inner_text() == "已兑付"
    await shot(page, "09-claim-paid")

    await page.goto(f"{server.base_url}/console/?year={claim['year']}")
    assert _amount(await page.locator(figures % "approved").inner_text()) == (
        approved_before + amount
    )
    assert _amount(await page.locator(figures % "paid").inner_text()) == paid_before + amount


async def sign_in_as(page: Any, server: LiveServer, key: str) -> None:
    await page.goto(server.base_url + "/console/login")
    await page.fill("#api_key", key)
    await page.click("button[type=submit]")
    await page.wait_for_url(server.base_url + "/console/")


async def decide(page: Any, decision: str, reason: str = "") -> None:
    await page.check(f"input[name=decision][value={decision}]")
    await page.fill("#reason", reason)
    await page.click("form[action$='/review'] button[type=submit]")
    await page.wait_for_load_state()


async def test_a_claim_returned_then_approved_by_two_reviewers(
    server: LiveServer, browser_page: tuple[Any, Watch]
) -> None:
    """Return (its reason required), the filer's resubmission, and a second review above
    the program's `dual_review_above`: the first approval waits, the same key cannot
    approve twice, a second key approves."""
    page, watch = browser_page
    program_url = f"/v1/subsidy-programs/{claims_helpers.PROGRAM}"
    async with AsyncClient(base_url=server.base_url, timeout=30) as api:
        dual = await api.patch(
            program_url, json={"dual_review_above": "1000.00"}, headers=bearer(OPERATOR_KEY)
        )
        assert dual.status_code == 200, dual.text
        try:
            provider, offer, enterprise = await claims_helpers.hz_market(api)
            order = await claims_helpers.settled_order(api, provider, offer, enterprise)
            documents = await claims_helpers.documents_for(api, enterprise, order)
            claim = (await claims_helpers.file_claim(api, enterprise, [order], documents)).json()
            assert Decimal(claim["amount"]) > Decimal("1000.00")
            first = await claims_helpers.reviewer(api, claims_helpers.PROGRAM)
            second = await claims_helpers.reviewer(api, claims_helpers.PROGRAM)
            claim_url = f"{server.base_url}/console/claims/{claim['id']}"
            status = page.locator("[data-figure=claim-status]")

            await sign_in_as(page, server, first["key"])
            await page.goto(claim_url)
            # A return needs its reason: refused without one, the claim unchanged.
            await decide(page, "return")
            assert await page.locator(".error").count() == 1
            assert await status.inner_text() == "待审核"
            await decide(page, "return", "请补充付款凭证")
            await page.wait_for_url(claim_url)
            assert await status.inner_text() == "已退回"
            assert "请补充付款凭证" in await page.locator("body").inner_text()
            await shot(page, "10-claim-returned")

            resubmitted = await api.post(
                f"/v1/voucher-claims/{claim['id']}/submit", headers=bearer(enterprise["api_key"])
            )
            assert resubmitted.status_code == 200, resubmitted.text
            await page.goto(claim_url)
            assert await status.inner_text() == "待审核"
            await decide(page, "approve")
            await page.wait_for_url(claim_url)
            assert await status.inner_text() == "待复核"
            await shot(page, "11-claim-awaiting-second-review")
            # The same key cannot give the second approval.
            await decide(page, "approve")
            assert await page.locator(".error").count() == 1
            assert await status.inner_text() == "待复核"

            await page.click("button:has-text('退出')")
            await sign_in_as(page, server, second["key"])
            await page.goto(f"{server.base_url}/console/claims?status=awaiting_second_review")
            await page.click(f"text={claim['id']}")
            await page.wait_for_url(claim_url)
            await decide(page, "approve")
            await page.wait_for_url(claim_url)
            assert await status.inner_text() == "已核定"
            await shot(page, "12-claim-second-review-approved")
        finally:
            undone = await api.patch(
                program_url, json={"dual_review_above": None}, headers=bearer(OPERATOR_KEY)
            )
            assert undone.status_code == 200, undone.text
    # The two refusals are 422 and 409 pages (the browser logs them too): expected here.
    expected = ("HTTP 422", "HTTP 409", "console error: Failed to load resource")
    assert sum(p.startswith(("HTTP 422", "HTTP 409")) for p in watch.problems) == 2
    watch.problems[:] = [p for p in watch.problems if not p.startswith(expected)]
