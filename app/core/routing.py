"""The route class of every operation: what a route does not declare, it refuses.

FastAPI ignores a query parameter an operation does not declare (`?sort=price` on a
search that cannot sort answered everything, unsorted) and answers a body sent as
`text/plain` with a confusing 422 about a dictionary. Each route here knows, once at
start-up, the query parameters its signature and dependencies declare and whether it
reads a JSON body; a request is checked against that before anything else runs:

- a query parameter the operation does not take: 422 naming it (`loc: ["query", name]`),
  like an unknown body field; so is a parameter that takes one value given twice (FastAPI
  kept the last one silently); a repeatable one (a `list[...]` parameter) ORs its values;
- a body under a `Content-Type` other than JSON (`application/json`, `…+json`), or a
  body with no `Content-Type` at all: 415; for an upload (a route that takes a file),
  the same unless the body is `multipart/form-data` (FastAPI answered a JSON body with
  a 422 about a missing field `file`).

A route that takes a key checks it first, as on any other request: a missing or unknown
key is a 401 whatever else is wrong. A request without a query string costs one
truthiness test; one with a query string, one set difference.
"""

from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from fastapi import Request, Response, params
from fastapi._compat import ModelField, field_annotation_is_sequence
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from starlette.datastructures import QueryParams

from app.core.errors import AppError, Unprocessable
from app.core.security import bearer, get_optional_principal, get_principal

JSON_MEDIA_TYPE = "application/json"
MULTIPART_MEDIA_TYPE = "multipart/form-data"


class UnsupportedMediaType(AppError):
    status = 415
    type = "unsupported-media-type"
    title = "Unsupported media type"


@dataclass(frozen=True)
class QueryContract:
    """The query parameters a route declares, and those of them that take one value."""

    names: frozenset[str]
    single: frozenset[str]

    @classmethod
    def of(cls, route: APIRoute) -> "QueryContract":
        fields = list(_query_fields(route.dependant))
        return cls(
            names=frozenset(field.alias for field in fields),
            single=frozenset(
                field.alias
                for field in fields
                if not field_annotation_is_sequence(field.field_info.annotation)
            ),
        )

    def refusal(self, given: QueryParams) -> Unprocessable | None:
        """422 for a parameter the route does not take, or a one-value one repeated."""
        errors = []
        unknown = given.keys() - self.names
        if unknown:
            takes = ", ".join(sorted(self.names)) or "none"
            errors += [
                {
                    "loc": ["query", name],
                    "msg": f"unknown query parameter; this operation takes: {takes}",
                }
                for name in sorted(unknown)
            ]
        if len(given.multi_items()) > len(given):  # some name repeats
            errors += [
                {"loc": ["query", name], "msg": "takes one value; it was given more than once"}
                for name in sorted(self.single.intersection(given.keys()))
                if len(given.getlist(name)) > 1
            ]
        if not errors:
            return None
        return Unprocessable(
            "; ".join(f"query.{e['loc'][1]}: {e['msg']}" for e in errors), errors=errors
        )


def is_json(content_type: str) -> bool:
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == JSON_MEDIA_TYPE or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def is_multipart(content_type: str) -> bool:
    return content_type.partition(";")[0].strip().lower() == MULTIPART_MEDIA_TYPE


def _query_fields(dependant: Dependant) -> Iterator[ModelField]:
    """The query parameters of a dependant and of every dependency below it."""
    yield from dependant.query_params
    for sub in dependant.dependencies:
        yield from _query_fields(sub)


Authenticate = Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[Any]]
AUTHENTICATIONS: tuple[Authenticate, ...] = (get_principal, get_optional_principal)


def _authentication(dependant: Dependant) -> Authenticate | None:
    """How the route checks its key, if it does (its dependency on `get_principal`)."""
    if dependant.call in AUTHENTICATIONS:
        return cast(Authenticate, dependant.call)
    for sub in dependant.dependencies:
        found = _authentication(sub)
        if found is not None:
            return found
    return None


class ContractRoute(APIRoute):
    """An APIRoute that refuses undeclared query parameters and non-JSON bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        query = QueryContract.of(self)
        takes_json = self.body_field is not None and not isinstance(
            self.body_field.field_info, params.Form
        )
        # A body with a file in it (params.File is a kind of params.Form) is multipart.
        takes_file = self.body_field is not None and isinstance(
            self.body_field.field_info, params.File
        )

        authenticate = _authentication(self.dependant)

        async def refuse(request: Request, refusal: AppError) -> NoReturn:
            # A missing or unknown key is a 401 before anything else, as on any request
            # of the route: the key is checked first (only here, on the refusal's path).
            if authenticate is not None:
                await authenticate(request, await bearer(request))
            raise refusal

        async def checked(request: Request) -> Response:
            if request.scope["query_string"]:
                refusal = query.refusal(request.query_params)
                if refusal is not None:
                    await refuse(request, refusal)
            if takes_json:
                headers = request.headers
                content_type = headers.get("content-type")
                if content_type is None:
                    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
                        await refuse(
                            request,
                            UnsupportedMediaType(
                                f"the body has no Content-Type; send it as JSON with "
                                f"Content-Type: {JSON_MEDIA_TYPE}"
                            ),
                        )
                elif not is_json(content_type):
                    media_type = content_type.partition(";")[0].strip() or "an empty media type"
                    await refuse(
                        request,
                        UnsupportedMediaType(
                            f"this operation reads {JSON_MEDIA_TYPE}, not {media_type}; "
                            f"send the body as JSON with Content-Type: {JSON_MEDIA_TYPE}"
                        ),
                    )
            elif takes_file:
                content_type = request.headers.get("content-type")
                if content_type is None or not is_multipart(content_type):
                    media_type = (content_type or "").partition(";")[0].strip()
                    await refuse(
                        request,
                        UnsupportedMediaType(
                            f"this operation reads {MULTIPART_MEDIA_TYPE}, not "
                            f"{media_type or 'a body without a Content-Type'}; send the file "
                            f"as {MULTIPART_MEDIA_TYPE} (curl -F file=@name.pdf)"
                        ),
                    )
            return await handler(request)

        return checked
