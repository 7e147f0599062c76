"""The console's pages through a signed-in client: the figures they show are the
ledger's, in Chinese by default and English on request."""

from datetime import UTC, datetime
from decimal import Decimal

from httpx import AsyncClient

from app.console.i18n import money
from app.core.timeutil import SHANGHAI
from tests.conftest import OPERATOR_KEY
from tests.console.conftest import sign_in
from tests.console.data import build_market
from tests.factories import T0

BINJIANG = "binjiang-compute-2025"
YEAR = T0.astimezone(SHANGHAI).year


async def test_money_is_written_with_the_yuan_sign_and_thousands() -> None:
    assert money(Decimal("1234.5")) == "¥1,234.50"
    assert money(Decimal("-0.05")) == "-¥0.05"
    assert money(Decimal("100000000")) == "¥100,000,000.00"
    assert money(None) == "—"


async def test_a_page_without_a_session_sends_to_the_sign_in(browser: AsyncClient) -> None:
    for path in ("/console/", f"/console/programs/{BINJIANG}", "/console/market"):
        resp = await browser.get(path)
        assert resp.status_code == 303, path
        assert resp.headers["location"] == "/console/login"


async def test_the_programs_page_shows_what_the_ledger_holds(
    client: AsyncClient, browser: AsyncClient
) -> None:
    market = await build_market(client, orders=4)
    assert (await sign_in(browser, OPERATOR_KEY)).status_code == 303
    page = await browser.get("/console/", params={"year": YEAR})
    assert page.status_code == 200
    html = page.text
    assert "算力券项目" in html
    assert "剩余" in html
    # Binjiang: 60% of the domestic orders' gross, 30% of the others', all settled.
    binjiang = sum(
        (
            Decimal(p["settled_subsidy"])
            for o in market.orders
            for p in o["parts"]
            if p["subsidy"]["program_id"] == BINJIANG
        ),
        Decimal(0),
    )
    assert binjiang > 0
    assert money(binjiang) in html
    assert money(Decimal("100000000.00") - binjiang) in html
    assert "<svg" in html
    assert "polyline" in html


async def test_english_on_request(client: AsyncClient, browser: AsyncClient) -> None:
    await sign_in(browser, OPERATOR_KEY)
    page = await browser.get("/console/", params={"lang": "en"})
    assert "Voucher programs" in page.text
    assert "Remaining" in page.text
    assert 'lang="en"' in page.text
    # Links keep the language.
    assert f'href="/console/programs/{BINJIANG}?year=' in page.text
    assert "lang=en" in page.text


async def test_a_program_page_breaks_the_year_down(
    client: AsyncClient, browser: AsyncClient
) -> None:
    market = await build_market(client, orders=4)
    await sign_in(browser, OPERATOR_KEY)
    page = await browser.get(f"/console/programs/{BINJIANG}", params={"year": YEAR})
    assert page.status_code == 200
    html = page.text
    # Binjiang's voucher is for Binjiang's enterprises: the Xihu one's orders are not in it.
    assert "按区县" in html
    assert "滨江" in html
    assert "西湖" not in html
    # Card-hours by origin: one order of 8 cards × 100 hours on each.
    origin = html.split("国产 / 非国产算力", 1)[1].split("</table>", 1)[0]
    assert origin.count('<td class="num">800</td>') == 2
    assert market.enterprises[0]["name"] in html
    export = await browser.get(f"/console/programs/{BINJIANG}/export.csv", params={"year": YEAR})
    assert export.status_code == 200
    assert export.content.startswith("\ufeff".encode())
    assert "district,330108" in export.text


async def test_an_unknown_program_is_a_404_page(browser: AsyncClient) -> None:
    await sign_in(browser, OPERATOR_KEY)
    page = await browser.get("/console/programs/no-such-program")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]


async def test_the_market_page_shows_the_index_and_flags_dear_offers(
    client: AsyncClient, browser: AsyncClient
) -> None:
    market = await build_market(client, orders=2)
    # Three more domestic offers: the median of 12, 12, 12, 40 is 12; 40 > 1.5 × 12.
    from tests.factories import create_offer

    provider = market.providers[0]
    for price in ("12.00", "12.00", "40.00"):
        await create_offer(client, provider, price_per_card_hour=price)
    await sign_in(browser, OPERATOR_KEY)
    page = await browser.get("/console/market")
    assert page.status_code == 200
    html = page.text
    assert "huawei-ascend-910b" in html
    assert "¥12.00" in html
    flagged = html.split("高于指数中位数", 1)[1]
    assert "¥40.00" in flagged
    assert "3.33×" in flagged
    assert datetime.now(UTC).astimezone(SHANGHAI).strftime("%Y-%m") in html
