"""The console: server-rendered pages for the voucher office and the operator.

A thin layer over the app's services: every page reads through `app.console.service`
(and the services it calls) in the request's own database session; nothing here calls
the API over HTTP.
"""

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from app.console import charts, i18n, service
from app.console import session as auth
from app.console.i18n import Lang
from app.core.deps import SessionDep
from app.core.money import format_money
from app.core.timeutil import today_shanghai, utcnow

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

# Autoescaping everywhere: every value a provider or enterprise chose (names, document
# numbers, reasons) reaches the page as text, never as markup.
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(
    money=i18n.money,
    percent=i18n.percent,
    instant=i18n.instant,
    day=i18n.day,
    short_money=charts.short_money,
    week_label=charts.week_label,
    burn_chart=charts.burn_chart,
    bars=charts.bars,
    sparkline=charts.sparkline,
    district_name=service.district_name,
)

router = APIRouter(prefix="/console", include_in_schema=False)
YearQuery = Annotated[int | None, Query(ge=2000, le=2100)]


def language(request: Request) -> Lang:
    return "en" if request.query_params.get("lang") == "en" else "zh"


def link_maker(lang: Lang) -> Callable[..., str]:
    def link(path: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v is not None}
        if lang == "en":
            query["lang"] = "en"
        return path + ("?" + urlencode(query) if query else "")

    return link


def render(
    request: Request,
    name: str,
    *,
    user: auth.ConsoleUser | None = None,
    status_code: int = 200,
    response: Response | None = None,
    **context: Any,
) -> HTMLResponse:
    lang = language(request)

    def t(key: str, **values: str) -> str:
        return i18n.text(lang, key, **values)

    other = dict(request.query_params)
    if lang == "en":
        other.pop("lang", None)
    else:
        other["lang"] = "en"
    html = templates.get_template(name).render(
        t=t,
        lang=lang,
        link=link_maker(lang),
        user=user,
        csrf=auth.csrf_token(request, user) if user else "",
        path=request.url.path,
        other_lang_url=request.url.path + ("?" + urlencode(other) if other else ""),
        claims_enabled=service.claims_enabled(),
        **context,
    )
    out = HTMLResponse(html, status_code=status_code)
    if response is not None:  # cookies set while building the page
        for key, value in response.headers.items():
            if key.lower() == "set-cookie":
                out.headers.append(key, value)
    return out


def to_login(request: Request) -> RedirectResponse:
    redirect = RedirectResponse(link_maker(language(request))("/console/login"), status_code=303)
    if auth.SESSION_COOKIE in request.cookies:  # expired, revoked or forged: drop it
        auth.clear_cookie(redirect, request, auth.SESSION_COOKIE)
    return redirect


def not_found(request: Request, user: auth.ConsoleUser) -> HTMLResponse:
    return render(request, "error.html", user=user, status_code=404, message_key="error.not_found")


def csrf_refused(request: Request, user: auth.ConsoleUser | None) -> HTMLResponse:
    return render(request, "error.html", user=user, status_code=403, message_key="error.csrf")


# Sign-in -------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def console_login_form(request: Request) -> HTMLResponse:
    holder = Response()
    token = auth.login_token(request, holder)
    return render(request, "login.html", response=holder, login_csrf=token, error_key=None)


@router.post("/login", response_class=HTMLResponse)
async def console_login(
    request: Request,
    session: SessionDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    holder = Response()
    if not auth.same_origin(request) or not auth.login_token_ok(request, csrf_token):
        token = auth.login_token(request, holder)
        return render(
            request,
            "login.html",
            status_code=403,
            response=holder,
            login_csrf=token,
            error_key="login.expired",
        )
    found = await auth.key_for_secret(request, session, api_key.strip()) if api_key else None
    error_key = None
    if found is None:
        error_key, status = "login.bad", 401
    elif found[1] not in auth.CONSOLE_ROLES:
        error_key, status = "login.wrong_role", 403
    if error_key is not None:
        token = auth.login_token(request, holder)
        auth.clear_cookie(holder, request, auth.SESSION_COOKIE)
        return render(
            request,
            "login.html",
            status_code=status,
            response=holder,
            login_csrf=token,
            error_key=error_key,
        )
    assert found is not None
    key_id, _role, _name, key_hash = found
    redirect = RedirectResponse(link_maker(language(request))("/console/"), status_code=303)
    auth.start_session(request, redirect, key_id, str(key_hash))
    return redirect


@router.post("/logout")
async def console_logout(
    request: Request,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    user = await auth.current_user(request, session)
    if user is not None and not (
        auth.same_origin(request) and auth.csrf_ok(request, user, csrf_token)
    ):
        return csrf_refused(request, user)
    redirect = to_login(request)
    auth.clear_cookie(redirect, request, auth.SESSION_COOKIE)
    return redirect


# Programs ------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def console_programs(
    request: Request, session: SessionDep, year: YearQuery = None
) -> Response:
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    today = today_shanghai()
    year = year or today.year
    programs = await service.programs_overview(session, user, year, today)
    return render(request, "programs.html", user=user, programs=programs, year=year, today=today)


@router.get("/programs/{program_id}", response_class=HTMLResponse)
async def console_program(
    request: Request, session: SessionDep, program_id: str, year: YearQuery = None
) -> Response:
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    today = today_shanghai()
    year = year or today.year
    report = await service.program_report(session, user, program_id, year, today)
    if report is None:
        return not_found(request, user)
    return render(request, "program.html", user=user, report=report, year=year, today=today)


@router.get("/programs/{program_id}/export.csv")
async def console_program_export(
    request: Request, session: SessionDep, program_id: str, year: YearQuery = None
) -> Response:
    """The program's report as CSV (UTF-8 with a BOM, so that Excel opens it)."""
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    year = year or today_shanghai().year
    report = await service.program_report(session, user, program_id, year, today_shanghai())
    if report is None:
        return not_found(request, user)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["section", "key", "label", "used", "settled", "card_hours", "enterprises"])
    p = report.program
    writer.writerow(["total", p.id, p.name, format_money(p.used), format_money(p.settled), "", ""])
    for section, slices in (
        ("district", report.by_district),
        ("origin", report.by_origin),
        ("payer", report.by_payer),
    ):
        for s in slices:
            writer.writerow(
                [
                    section,
                    s.key,
                    s.label,
                    format_money(s.used),
                    format_money(s.settled),
                    s.card_hours,
                    s.enterprises,
                ]
            )
    for e in report.top:
        writer.writerow(
            ["enterprise", e.id, e.name, format_money(e.used), format_money(e.settled), "", ""]
        )
    filename = f"{program_id}-{year}.csv"
    return StreamingResponse(
        iter([buffer.getvalue().encode()]),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# Market --------------------------------------------------------------------------


@router.get("/market", response_class=HTMLResponse)
async def console_market(request: Request, session: SessionDep) -> Response:
    user = await auth.current_user(request, session)
    if user is None:
        return to_login(request)
    market = await service.market_overview(session, utcnow())
    return render(request, "market.html", user=user, market=market, today=today_shanghai())
