"""A browser-like client of the console: its own cookie jar, over https (the session
cookie is Secure off loopback)."""

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient, Response

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page carries no CSRF token"
    return found.group(1)


async def sign_in(browser: AsyncClient, key: str) -> Response:
    form = await browser.get("/console/login")
    assert form.status_code == 200, form.text
    return await browser.post(
        "/console/login", data={"api_key": key, "csrf_token": csrf_of(form.text)}
    )


def new_browser(app: Any) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=app), base_url="https://test")


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[AsyncClient]:
    async with new_browser(app) as c:
        yield c
