"""Which trained router serves, read from the shared store and handed to the classifier.

The store (``modelrouter.state.routers``, in the decision log's database) keeps every
router version and one pointer: the serving version, the versions served before it (what
``rollback`` returns to), and an optional A/B candidate with the share of traffic it gets.
:class:`RouterRegistry` re-reads the pointer every ``reload_interval_s`` and, when it
changed, loads the artefacts and hands a :class:`ServingRouters` to every classifier that
serves router versions (:class:`VersionedClassifier`), so every replica on the store
follows a promote or rollback without a restart.

The A/B arm of a request is a hash of its tenant and session id (or, without a session,
its prompt), so one conversation stays on one arm and the split is reproducible. (The
decision id does not exist yet when the request is classified.)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..types import RoutingRequest
from .quality_model import QualityModel

__all__ = [
    "LoadedRouter",
    "RouterPointer",
    "RouterRegistry",
    "RouterVersion",
    "ServingRouters",
    "StoredRouters",
    "VersionedClassifier",
    "arm_fraction",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouterVersion:
    """One stored router artefact and what the gate said about it."""

    #: The artefact's content hash (:attr:`QualityModel.version`).
    version: str
    #: Seconds since the epoch (UTC) it was first stored.
    created_at: float
    #: ``stored`` (put, never judged), ``promoted``, ``refused`` or ``candidate`` (A/B).
    status: str
    #: Free text: where it came from (``retrain``, a file name).
    notes: str = ""
    #: The gate's verdict (:meth:`~modelrouter.evaluation.compare.Verdict.to_json`) and
    #: training figures; empty when never judged.
    metrics: Mapping[str, Any] = field(default_factory=dict)
    #: The ``.npz`` bytes (empty in listings).
    artifact: bytes = b""


@dataclass(frozen=True, slots=True)
class RouterPointer:
    """What the replicas serve. Empty strings mean none."""

    serving: str = ""
    #: Versions served before ``serving``, oldest first; ``rollback`` returns to the last.
    history: tuple[str, ...] = ()
    #: A/B candidate and the share of requests (0..1) it classifies.
    candidate: str = ""
    share: float = 0.0
    updated_at: float = 0.0


class StoredRouters(Protocol):
    """What the registry reads of the store (``modelrouter.state.routers.RouterStore``)."""

    async def pointer(self) -> RouterPointer: ...

    async def get(self, version: str) -> RouterVersion | None: ...


def arm_fraction(request: RoutingRequest) -> float:
    """Where ``request`` falls in [0, 1) for the A/B split (stable per session or prompt)."""
    key = f"{request.tenant}\0{request.session_id or request.prompt}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True, slots=True)
class LoadedRouter:
    """A stored version, loaded (the version is kept: hashing the model per request is not
    free)."""

    version: str
    model: QualityModel


@dataclass(frozen=True, slots=True)
class ServingRouters:
    """The loaded serving router and A/B candidate (either may be absent)."""

    serving: LoadedRouter | None = None
    candidate: LoadedRouter | None = None
    share: float = 0.0

    def pick(self, request: RoutingRequest) -> LoadedRouter | None:
        """The router that classifies ``request``: the candidate for ``share`` of requests,
        else the serving one; ``None`` when the store serves nothing for it (the classifier
        then uses its own artefact)."""
        if self.candidate is not None and self.share > 0 and arm_fraction(request) < self.share:
            return self.candidate
        return self.serving


@runtime_checkable
class VersionedClassifier(Protocol):
    """A classifier that serves router versions from the store (the ``learned`` one)."""

    def use_routers(self, routers: ServingRouters) -> None:
        """Serve ``routers`` from now on (called from the event loop; must not block)."""


class RouterRegistry:
    """Polls the store's pointer and hands changes to ``targets``. Build once per server."""

    def __init__(
        self,
        store: StoredRouters,
        targets: Iterable[VersionedClassifier],
        reload_interval_s: float,
    ) -> None:
        self.store = store
        self.targets = tuple(targets)
        self.reload_interval_s = reload_interval_s
        self.current = ServingRouters()
        self._seen: tuple[str, str, float] | None = None
        self._loaded: dict[str, LoadedRouter] = {}
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> bool:
        """Read the pointer once; returns whether what is served changed."""
        pointer = await self.store.pointer()
        seen = (pointer.serving, pointer.candidate, pointer.share if pointer.candidate else 0.0)
        if seen == self._seen:
            return False
        serving = await self._model(pointer.serving)
        candidate = await self._model(pointer.candidate)
        self.current = ServingRouters(serving, candidate, seen[2])
        for target in self.targets:
            target.use_routers(self.current)
        self._seen = seen
        log.info(
            "router version %s serving%s",
            pointer.serving or "(the classifier's own artefact)",
            f"; candidate {pointer.candidate} on {seen[2]:.0%}" if pointer.candidate else "",
        )
        return True

    async def _model(self, version: str) -> LoadedRouter | None:
        if not version:
            return None
        loaded = self._loaded.get(version)
        if loaded is None:
            stored = await self.store.get(version)
            if stored is None:
                raise LookupError(f"the router pointer names version {version}, not stored")
            model = await asyncio.to_thread(QualityModel.from_bytes, stored.artifact)
            loaded = LoadedRouter(version, model)
            # Versions are immutable (content hashes): keep the live ones loaded, forget
            # the rest.
            live = {r.version for r in (self.current.serving, self.current.candidate) if r}
            self._loaded = {v: r for v, r in self._loaded.items() if v in live}
            self._loaded[version] = loaded
        return loaded

    def start(self) -> None:
        """Poll in the background until :meth:`aclose`. Nothing to poll without targets."""
        if self.targets and self._task is None:
            self._task = asyncio.create_task(self._poll(), name="router-registry")

    async def _poll(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                # A store hiccup or a bad artefact keeps the routers already served.
                log.exception("reading the router versions failed; serving what was loaded")
            await asyncio.sleep(self.reload_interval_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
