"""A pytest plugin (tests/conftest.py loads it): no API key in the log of the whole run.

A handler on the root and `computematch` loggers reads every record the run
writes, at whatever level each test sets, and looks for anything shaped like
an API key (`cm_` and 43 URL-safe characters) or the bootstrap operator key.
A leak fails the run at its end and is reported with the key redacted.
"""

import logging
import re

import pytest

KEY_PATTERN = re.compile(r"cm_[A-Za-z0-9_-]{43}")
LOGGERS = ("", "computematch")


class KeyLeakGuard(logging.Handler):
    def __init__(self, known: list[str]) -> None:
        super().__init__(logging.NOTSET)
        self.known = known
        self.leaks: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage() + repr(vars(record))
            if record.exc_info:
                text += self._formatter.formatException(record.exc_info)
        except Exception:  # a record that cannot be rendered is not ours to judge
            return
        if KEY_PATTERN.search(text) or any(key in text for key in self.known):
            message = KEY_PATTERN.sub("cm_<redacted>", record.getMessage())
            for key in self.known:
                message = message.replace(key, "<redacted>")
            self.leaks.append(f"{record.name} {record.levelname}: {message[:300]}")


_guard: KeyLeakGuard | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _guard
    from tests.conftest import OPERATOR_KEY

    _guard = KeyLeakGuard([OPERATOR_KEY])
    for name in LOGGERS:
        logging.getLogger(name).addHandler(_guard)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _guard is None:
        return
    for name in LOGGERS:
        logging.getLogger(name).removeHandler(_guard)
    if _guard.leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        lines = ["", "API keys were logged during the run (API2):", *_guard.leaks[:20]]
        if reporter is not None:
            reporter.write_line("\n".join(lines), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
