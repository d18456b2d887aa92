"""One retrain (``modelrouter retrain`` and the server's schedule run the same function),
and the schedule that runs it on one replica at a time.

:func:`retrain_once` reads the labelled decisions (feedback and shadow labels), trains a
candidate, judges it against the serving router with the gate
(:mod:`modelrouter.learning.retrain`, :mod:`modelrouter.evaluation.gate`), stores it with
its verdict and promotes it unless it is worse beyond noise.

:class:`RetrainSchedule` (``[routers] retrain_schedule_s``) runs it every period on the
replica that holds the store's retrain lease. The holder renews the lease each period; it
lapses after two periods without renewal (the holder stopped), and another replica takes
over. A retrain that outlasts the lease may overlap with another replica's: harmless (each
promote is one transaction on the pointer), only wasted work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .config.environment import Environment
from .evaluation.gate import GateVerdict
from .learning.quality_model import QualityModel
from .learning.registry import RouterVersion
from .state import StateServices
from .state.export import labelled_lines
from .state.routers import RouterStore, RouterStoreError

__all__ = ["RetrainError", "RetrainOutcome", "RetrainSchedule", "retrain_once"]

log = logging.getLogger(__name__)


class RetrainError(ValueError):
    """Nothing to train on or compare with; the message says what to change."""


@dataclass(frozen=True)
class RetrainOutcome:
    candidate: str
    serving: str
    promoted: bool
    verdict: GateVerdict
    #: Logged prompts the candidate trained on, held back for the gate, and base prompts.
    trained_on: int
    held_back: int
    base_rows: int


async def retrain_once(
    config: Config,
    state: StateServices,
    store: RouterStore,
    *,
    data: Path | None = None,
    holdout: float | None = None,
    seed: int = 0,
    dry_run: bool = False,
    tenant: str | None = None,
    notes: str = "",
) -> RetrainOutcome:
    """Train, judge, store and (unless refused or ``dry_run``) promote a candidate.

    Raises :class:`RetrainError` when there is no serving router or too few labelled
    prompts (naming ``storage.log_prompts`` when the log kept none), ``ValueError`` for a
    bad ``holdout`` or ``data`` file.
    """
    from .learning.embedders import embedder_from_name
    from .learning.retrain import labelled_rows, retrain

    settings = config.routers
    # Feedback and shadow labels, merged as export-feedback writes them.
    lines = [line async for line in labelled_lines(state, tenant)]
    serving, serving_version = await _serving_model(config, store)
    logged = labelled_rows(lines, serving.models)
    if len(logged) < settings.min_labelled:
        without_prompt = sum(1 for line in lines if not line.get("prompt"))
        hint = (
            f"; {without_prompt} labelled decision(s) have no prompt: set "
            "storage.log_prompts = true so the log keeps prompts to learn from"
            if without_prompt
            else ""
        )
        raise RetrainError(
            f"{len(logged)} labelled prompt(s) for the serving router's models in the "
            f"decision log, routers.min_labelled is {settings.min_labelled}{hint}"
        )
    base = None
    if data is not None:
        from .evaluation.dataset import _open

        with _open(Path(data)) as handle:
            base = labelled_rows([json.loads(x) for x in handle if x.strip()], serving.models)
    result = await asyncio.to_thread(
        retrain,
        logged,
        serving,
        embedder_from_name(serving.embedder),
        base=base,
        holdout=settings.holdout if holdout is None else holdout,
        seed=seed,
        resamples=settings.resamples,
        confidence=settings.confidence,
        aiq_tolerance=settings.aiq_tolerance,
        calibration_tolerance=settings.calibration_tolerance,
    )
    verdict, candidate = result.verdict, result.candidate
    version = candidate.version
    promote = verdict.promote and not dry_run
    await store.put(
        RouterVersion(
            version,
            time.time(),
            "promoted" if promote else ("refused" if not verdict.promote else "stored"),
            notes=f"retrain{notes} against {serving_version}: {result.trained_on} logged + "
            f"{result.base_rows} base prompts, {result.held_back} held back",
            metrics={"gate": verdict.to_json(), "serving": serving_version},
            artifact=candidate.to_bytes(),
        )
    )
    if promote:
        if not (await store.pointer()).serving:
            # The file artefact served: make it the version rollback returns to.
            await store.promote(serving_version)
        await store.promote(version)
    return RetrainOutcome(
        version,
        serving_version,
        promote,
        verdict,
        result.trained_on,
        result.held_back,
        result.base_rows,
    )


async def _serving_model(config: Config, store: RouterStore) -> tuple[QualityModel, str]:
    """The router serving now: the store's version, else the configured file artefact
    (stored as a version on first use, so a rollback can return to it)."""
    pointer = await store.pointer()
    if pointer.serving:
        stored = await store.get(pointer.serving)
        if stored is None:
            raise RouterStoreError(f"the pointer names version {pointer.serving}, not stored")
        return QualityModel.from_bytes(stored.artifact), pointer.serving
    path = config.classifiers.get("learned", {}).get("artifact") or Environment().get(
        "MODELROUTER_LEARNED_ARTIFACT"
    )
    if not path:
        raise RetrainError(
            "no serving router to compare with: no version in the store and no "
            "classifiers.learned.artifact (or MODELROUTER_LEARNED_ARTIFACT) configured"
        )
    model = QualityModel.load(path)
    if await store.get(model.version) is None:
        await store.put(
            RouterVersion(
                model.version,
                time.time(),
                "stored",
                notes=f"file artefact {Path(path).name}",
                artifact=model.to_bytes(),
            )
        )
    return model, model.version


#: Periods a lease lasts without renewal: a holder that misses one renewal keeps it.
LEASE_PERIODS = 2.0


class RetrainSchedule:
    """Runs :func:`retrain_once` every ``routers.retrain_schedule_s`` on the lease holder."""

    def __init__(self, config: Config, state: StateServices, store: RouterStore) -> None:
        self.config = config
        self.state = state
        self.store = store
        self.period_s = config.routers.retrain_schedule_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: Periods in which this replica held the lease (and so ran a retrain).
        self.runs = 0
        self.last: RetrainOutcome | None = None
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> RetrainOutcome | None:
        """One period: retrain if this replica holds (or takes) the lease."""
        if not await self.store.acquire_lease(self.holder, LEASE_PERIODS * self.period_s):
            return None
        self.runs += 1
        try:
            outcome = await retrain_once(
                self.config, self.state, self.store, notes=f" (scheduled on {self.holder})"
            )
        except RetrainError as error:
            log.info("scheduled retrain skipped: %s", error)
            return None
        log.info(
            "scheduled retrain: candidate %s %s (serving %s)",
            outcome.candidate,
            "promoted" if outcome.promoted else "refused",
            outcome.serving,
        )
        self.last = outcome
        return outcome

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="retrain-schedule")

    async def _loop(self) -> None:
        # Ticks at a fixed rate (not a fixed pause after each retrain), so the holder renews
        # its lease every period however long the training took, as long as it took less.
        due = time.monotonic() + self.period_s
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + self.period_s, time.monotonic())
            try:
                await self.tick()
            except Exception:
                # A store hiccup or a training failure must not stop later periods.
                log.exception("scheduled retrain failed")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
