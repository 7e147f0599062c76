"""Related parties (关联方, claims.md), as providers and enterprises declare them: one
rule for both kinds of party, below the domains that keep them."""

from app.core.errors import Unprocessable
from app.core.security import Principal


def related_parties_after(
    principal: Principal, current: list[str] | None, sent: list[str]
) -> list[str]:
    """A party's related parties as sent: the party declares and adds; only the operator
    removes a code (claims.md "the operator may add more"), so none slips away unseen."""
    dropped = sorted(set(current or []) - set(sent))
    if dropped and not principal.is_operator:
        raise Unprocessable.field(
            ["body", "related_parties"],
            f"only the operator removes a related party ({', '.join(dropped)})",
        )
    return list(sent)
