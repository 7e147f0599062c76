"""The console's own defences: session fixation, CSRF, a revoked key's session,
clickjacking, the cookie's flags, and stored XSS through what providers and
enterprises write."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import AsyncClient

from app.console import session as console_session
from tests.conftest import OPERATOR_KEY
from tests.console.conftest import csrf_of, new_browser, sign_in
from tests.console.data import build_market
from tests.factories import OPERATOR, create_enterprise, create_offer, create_provider


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[AsyncClient]:
    async with new_browser(app) as c:
        yield c


PAGES = ("/console/", "/console/programs/binjiang-compute-2025", "/console/market")
COOKIE = console_session.SESSION_COOKIE


async def operator_key(client: AsyncClient, name: str = "office desk") -> tuple[str, str]:
    made = await client.post(
        "/v1/api-keys", json={"role": "operator", "name": name}, headers=OPERATOR
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["key"]


def set_cookies(response: Any) -> list[str]:
    return response.headers.get_list("set-cookie")


async def test_sign_in_sets_a_strict_httponly_secure_expiring_cookie(browser: AsyncClient) -> None:
    signed = await sign_in(browser, OPERATOR_KEY)
    assert signed.status_code == 303
    cookie = next(c for c in set_cookies(signed) if c.startswith(f"{COOKIE}="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite=strict", "path=/console", "max-age=28800"} <= flags


async def test_on_loopback_the_cookie_is_not_secure_so_plain_http_works(app: Any) -> None:
    from httpx import ASGITransport

    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://127.0.0.1") as b:
        signed = await sign_in(b, OPERATOR_KEY)
        cookie = next(c for c in set_cookies(signed) if c.startswith(f"{COOKIE}="))
        assert "secure" not in cookie.lower()
        assert (await b.get("/console/")).status_code == 200


async def test_session_fixation_a_planted_cookie_is_replaced_never_promoted(
    app: Any, client: AsyncClient
) -> None:
    # The attacker signs in with a key of their own and plants that session in the
    # victim's browser; the victim then signs in with the office's key.
    attacker_key_id, attacker_secret = await operator_key(client, "attacker")
    async with new_browser(app) as attacker:
        await sign_in(attacker, attacker_secret)
        planted = attacker.cookies[COOKIE]
    async with new_browser(app) as victim:
        victim.cookies.set(COOKIE, planted, domain="test.local", path="/console")
        signed = await sign_in(victim, OPERATOR_KEY)
        assert signed.status_code == 303
        fresh = next(c for c in set_cookies(signed) if c.startswith(f"{COOKIE}="))
        value = fresh.split(";", 1)[0].split("=", 1)[1]
        assert value != planted
    # The planted session is still only the attacker's: revoking the attacker's key
    # ends it, while the victim's is untouched.
    revoked = await client.delete(f"/v1/api-keys/{attacker_key_id}", headers=OPERATOR)
    assert revoked.status_code == 200
    async with new_browser(app) as attacker:
        attacker.cookies.set(COOKIE, planted, domain="test.local", path="/console")
        assert (await attacker.get("/console/")).status_code == 303
    async with new_browser(app) as victim:
        victim.cookies.set(COOKIE, value, domain="test.local", path="/console")
        page = await victim.get("/console/")
        assert page.status_code == 200
        assert "attacker" not in page.text


async def test_every_sign_in_starts_a_new_session(app: Any) -> None:
    async with new_browser(app) as b:
        await sign_in(b, OPERATOR_KEY)
        first = b.cookies[COOKIE]
        page = await b.get("/console/")
        first_csrf = csrf_of(page.text)
        await sign_in(b, OPERATOR_KEY)
        assert b.cookies[COOKIE] != first
        assert csrf_of((await b.get("/console/")).text) != first_csrf


async def test_a_revoked_keys_session_dies_at_its_next_request(
    app: Any, client: AsyncClient
) -> None:
    key_id, secret = await operator_key(client)
    async with new_browser(app) as b:
        await sign_in(b, secret)
        assert (await b.get("/console/")).status_code == 200
        revoked = await client.delete(f"/v1/api-keys/{key_id}", headers=OPERATOR)
        assert revoked.status_code == 200
        for path in PAGES:
            resp = await b.get(path)
            assert resp.status_code == 303, path
            assert resp.headers["location"] == "/console/login"
        # And it cannot sign in again.
        again = await sign_in(b, secret)
        assert again.status_code == 401
        assert COOKIE not in b.cookies


async def test_enterprise_and_provider_keys_are_refused_with_a_message(
    client: AsyncClient, browser: AsyncClient
) -> None:
    enterprise = await create_enterprise(client)
    provider = await create_provider(client)
    for key in (enterprise["api_key"], provider["api_key"]):
        refused = await sign_in(browser, key)
        assert refused.status_code == 403
        assert "管理台仅供算力券管理部门" in refused.text
        assert COOKIE not in browser.cookies
    unknown = await sign_in(browser, "cm_not-a-key")
    assert unknown.status_code == 401
    assert "密钥无效或已吊销" in unknown.text


async def test_the_sign_in_form_needs_its_csrf_token(browser: AsyncClient) -> None:
    await browser.get("/console/login")
    for token in ("", "forged"):
        refused = await browser.post(
            "/console/login", data={"api_key": OPERATOR_KEY, "csrf_token": token}
        )
        assert refused.status_code == 403
        assert COOKIE not in browser.cookies


async def test_a_token_from_another_browser_does_not_sign_in(app: Any) -> None:
    async with new_browser(app) as other:
        token = csrf_of((await other.get("/console/login")).text)
    async with new_browser(app) as b:
        await b.get("/console/login")  # its own nonce, not the other's
        refused = await b.post(
            "/console/login", data={"api_key": OPERATOR_KEY, "csrf_token": token}
        )
        assert refused.status_code == 403
        assert COOKIE not in b.cookies


async def test_a_cross_site_post_is_refused_even_with_a_token(browser: AsyncClient) -> None:
    form = await browser.get("/console/login")
    refused = await browser.post(
        "/console/login",
        data={"api_key": OPERATOR_KEY, "csrf_token": csrf_of(form.text)},
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert COOKIE not in browser.cookies


async def test_sign_out_needs_the_sessions_token(browser: AsyncClient) -> None:
    await sign_in(browser, OPERATOR_KEY)
    refused = await browser.post("/console/logout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert (await browser.get("/console/")).status_code == 200
    token = csrf_of((await browser.get("/console/")).text)
    out = await browser.post("/console/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await browser.get("/console/")).status_code == 303


async def test_a_tampered_or_expired_cookie_is_no_session(
    browser: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await sign_in(browser, OPERATOR_KEY)
    good = browser.cookies[COOKIE]
    browser.cookies.set(
        COOKIE,
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        domain="test.local",
        path="/console",
    )
    assert (await browser.get("/console/")).status_code == 303
    browser.cookies.set(COOKIE, good, domain="test.local", path="/console")
    assert (await browser.get("/console/")).status_code == 200
    monkeypatch.setattr(console_session, "SESSION_SECONDS", -1)
    assert (await browser.get("/console/")).status_code == 303


@pytest.mark.parametrize("path", ["/console/login", *PAGES, "/console/programs/nope"])
async def test_no_console_page_can_be_framed(browser: AsyncClient, path: str) -> None:
    if path != "/console/login":
        await sign_in(browser, OPERATOR_KEY)
    resp = await browser.get(path)
    assert resp.headers["x-frame-options"] == "DENY"
    csp = resp.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp
    assert "'unsafe-inline'" not in csp


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


async def test_names_a_provider_or_enterprise_chose_are_shown_as_text(
    client: AsyncClient, browser: AsyncClient
) -> None:
    market = await build_market(
        client, orders=2, provider_name="P" + XSS, enterprise_name="E" + XSS
    )
    # A dear offer of that provider, so that its name is on the market page's flags.
    for price in ("12.00", "12.00", "90.00"):
        await create_offer(client, market.providers[0], price_per_card_hour=price)
    await sign_in(browser, OPERATOR_KEY)
    from tests.console.test_pages import YEAR

    pages = [
        await browser.get("/console/programs/binjiang-compute-2025", params={"year": YEAR}),
        await browser.get("/console/market"),
    ]
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert "E" + escaped in pages[0].text
    assert "P" + escaped in pages[1].text
    for page in pages:
        assert "<script" not in page.text
        assert "<img" not in page.text
