"""GB/T 2260 county-level region codes: the table the service ships (app/core/data).

Loaded once per process, on first use; the source and date of the table are in
``app/core/data/README.md``.
"""

import csv
from functools import cache
from importlib import resources
from typing import Final

TABLE: Final = "gbt2260.csv"
TABLE_DATE: Final = "2026-12-04"


@cache
def codes() -> dict[str, str]:
    """Every county-level code of the table, with its name."""
    text = resources.files("app.core.data").joinpath(TABLE).read_text(encoding="utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(text.splitlines())}


@cache
def _prefixes() -> frozenset[str]:
    # Province (2 digits), prefecture (4) and county (6) prefixes of the real codes.
    return frozenset(code[:n] for code in codes() for n in (2, 4, 6))


def is_real_region_code(code: str) -> bool:
    """Whether ``code`` is a county-level code of the table."""
    return code in codes()


def is_real_region_prefix(prefix: str) -> bool:
    """Whether ``prefix`` (2, 4 or 6 digits) begins at least one code of the table."""
    return prefix in _prefixes()


def unknown_code_message(field: str, code: str) -> str:
    return (
        f"{field} {code} is not a GB/T 2260 county-level code (table of {TABLE_DATE}); "
        "use the code of the county or district, e.g. 330108 for Binjiang, Hangzhou"
    )


def unknown_prefix_message(prefix: str) -> str:
    return (
        f"{prefix} begins no GB/T 2260 county-level code (table of {TABLE_DATE}); a region "
        "prefix is a province (33), a prefecture (3301) or a county (330108)"
    )
