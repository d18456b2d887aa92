"""Log lines that callers cannot forge.

Tenant names, model names, upstream error messages and other strings a caller or an
upstream controls end up in log messages. A newline or an escape sequence in one of them
could start a fake log line or recolour a terminal; :class:`EscapingFormatter` writes
every control character of the message as a visible escape (tracebacks keep their lines).
"""

from __future__ import annotations

import logging

#: C0 and C1 control characters (and DEL) as their escaped forms; tabs stay.
_ESCAPES = {
    code: f"\\x{code:02x}"
    for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0))
    if code != 0x09
}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x1B: "\\x1b"})


def escape(text: str) -> str:
    """``text`` with control characters written as escapes."""
    return text.translate(_ESCAPES)


class EscapingFormatter(logging.Formatter):
    """A formatter whose messages cannot hold control characters."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)


def configure(level: str, fmt: str) -> None:
    """Log to standard error at ``level`` through :class:`EscapingFormatter`."""
    handler = logging.StreamHandler()
    handler.setFormatter(EscapingFormatter(fmt))
    logging.basicConfig(level=level.upper(), handlers=[handler])
