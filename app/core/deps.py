"""Request-scoped dependencies: one session and one commit per request."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.core.db import Database, session_scope

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# POSTs that compute without writing: no need for SQLite's write lock.
READ_ONLY_POSTS = frozenset({"/v1/subsidy-quotes"})


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db = get_db(request)
    write = request.method not in SAFE_METHODS and request.url.path not in READ_ONLY_POSTS
    # One commit per request, before the response leaves (scope="function").
    async with session_scope(db, write=write) as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
