"""The router: classify a request, then select models for it.

Plain objects and async functions; the gRPC servicer only translates to and from them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .base import Classifier
from .catalog import Catalog
from .config import Config, RoutingConfig
from .errors import FieldViolation, InvalidRequest
from .plugins import PluginRegistry
from .selection import Selection, select
from .telemetry.tracing import Telemetry
from .types import Classification, RoutingRequest

if TYPE_CHECKING:
    from .state import StateServices

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """A routing decision: how the request was classified and which models may answer."""

    decision_id: str
    classification: Classification
    selection: Selection


class Router:
    def __init__(
        self,
        config: Config,
        registry: PluginRegistry,
        catalog: Catalog,
        state: StateServices | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.catalog = catalog
        #: Budgets, adaptive policy and decision log; ``None``: route statelessly.
        self.state = state
        #: Spans and metrics of classification and routing (no-op when not given).
        self.telemetry = telemetry or Telemetry()

    @property
    def default_classifier(self) -> str:
        return self.config.routing.default_classifier

    def check_request(self, request: RoutingRequest) -> None:
        """Reject names that match nothing, so a typo never silently changes the routing."""
        constraints = request.constraints
        violations: list[FieldViolation] = []
        if (
            constraints.classifier is not None
            and constraints.classifier not in self.registry.classifiers
        ):
            violations.append(
                FieldViolation(
                    "constraints.classifier",
                    f"unknown classifier {constraints.classifier!r}; valid: "
                    f"{', '.join(sorted(self.registry.classifiers))}",
                )
            )
        for i, model in enumerate(constraints.excluded_models):
            if model not in self.catalog.models:
                violations.append(
                    FieldViolation(
                        f"constraints.excluded_models[{i}]",
                        f"unknown model {model!r}; valid: {', '.join(self.catalog.models)}",
                    )
                )
        providers = self.config.providers
        for i, provider in enumerate(constraints.allowed_providers):
            if provider not in providers:
                violations.append(
                    FieldViolation(
                        f"constraints.allowed_providers[{i}]",
                        f"unknown provider {provider!r}; valid: {', '.join(sorted(providers))}",
                    )
                )
        if request.model is not None and request.model not in self.catalog.models:
            violations.append(
                FieldViolation(
                    "model",
                    f"unknown model {request.model!r}; valid: {', '.join(self.catalog.models)}",
                )
            )
        if violations:
            raise InvalidRequest(violations)

    async def classify(self, request: RoutingRequest) -> Classification:
        self.check_request(request)
        name = request.constraints.classifier or self.default_classifier
        if not self.telemetry.observing:
            # Telemetry off: no span to open and no duration to record.
            return await self._classify_with(name, request)
        with self.telemetry.classifying(name, request) as observe:
            return observe(await self._classify_with(name, request))

    async def _classify_with(self, name: str, request: RoutingRequest) -> Classification:
        classifier = self._classifier(name)
        try:
            return await classifier.classify(request)
        except Exception:
            # A faulty plugin must not fail the request when the default can still decide.
            if name == self.default_classifier:
                raise
            log.exception("classifier %s failed; using %s", name, self.default_classifier)
            fallback = await self._classifier(self.default_classifier).classify(request)
            features = {**fallback.features, "classifier_error_fallback": 1.0}
            return Classification(
                complexity=fallback.complexity,
                task_type=fallback.task_type,
                score=fallback.score,
                confidence=fallback.confidence,
                classifier=fallback.classifier,
                features=features,
            )

    async def route(self, request: RoutingRequest) -> Decision:
        if not self.telemetry.observing:
            # Telemetry off: skip the span and timing; the stats still count the decision.
            decision = await self._route(request)
            self.telemetry.record_decision(request, decision)
            return decision
        with self.telemetry.routing(request) as observe:
            return observe(await self._route(request))

    async def _route(self, request: RoutingRequest) -> Decision:
        classification = await self.classify(request)
        selection = select(
            request,
            classification,
            list(self.catalog.models.values()),
            self.config.routing,
            self.catalog.unavailable_reason,
            self.catalog.cooling_reason,
        )
        decision_id = str(uuid.uuid4())
        if self.state is not None:
            steered = await self.state.steer(
                request,
                classification,
                selection,
                self._reselect(classification),
                self.config.routing,
            )
            selection = steered.selection
            await self.state.log_decision(
                decision_id, request, classification, selection, explored=steered.explored
            )
        return Decision(decision_id, classification, selection)

    def _reselect(
        self, classification: Classification
    ) -> Callable[[RoutingRequest, RoutingConfig], Selection]:
        def reselect(request: RoutingRequest, routing: RoutingConfig) -> Selection:
            models = list(self.catalog.models.values())
            return select(
                request,
                classification,
                models,
                routing,
                self.catalog.unavailable_reason,
                self.catalog.cooling_reason,
            )

        return reselect

    def _classifier(self, name: str) -> Classifier:
        try:
            return self.registry.classifiers[name]
        except KeyError:
            valid = ", ".join(sorted(self.registry.classifiers)) or "none loaded"
            raise InvalidRequest.single(
                "constraints.classifier", f"unknown classifier {name!r}; valid: {valid}"
            ) from None
