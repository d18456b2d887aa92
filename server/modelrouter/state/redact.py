"""Keep passwords in storage URLs out of logs and error messages."""

from __future__ import annotations

import re

__all__ = ["redact_url"]

# scheme://user:password@host -> scheme://user:***@host (also Redis's ``redis://:pw@host``).
# Matches inside longer text too, so an error message quoting a URL is cleaned as well.
# (``scheme://name@host`` carries a user name, not a password, for redis-py and libpq.)
_WITH_USER = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)([^:/@\s]*):([^@\s]*)@")
# key=value connection strings (libpq's ``password=...``) and ``?password=`` parameters.
_PARAMETER = re.compile(r"(\bpassword\s*=\s*)('[^']*'|[^\s&]+)", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` with every URL password replaced by ``***`` (the user name is kept)."""
    text = _WITH_USER.sub(r"\1\2:***@", text)
    return _PARAMETER.sub(r"\1***", text)
