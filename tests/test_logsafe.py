"""Strings a caller controls cannot forge log lines."""

from __future__ import annotations

import io
import logging

from modelrouter.logsafe import EscapingFormatter


def test_control_characters_in_a_message_are_escaped_but_tracebacks_keep_their_lines():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("modelrouter.test.logsafe")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("tenant %s failed", "evil\nINFO fake line\x1b[31m")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("with a traceback")
    finally:
        log.removeHandler(handler)
    first, *rest = stream.getvalue().splitlines()
    assert first == "WARNING tenant evil\\nINFO fake line\\x1b[31m failed"
    assert rest[0] == "ERROR with a traceback" and rest[1].startswith("Traceback")
