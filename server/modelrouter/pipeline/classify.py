"""Stage 2, classify: how demanding the request is and what kind of task it is.

Runs exactly once per request. A classifier the caller picked that fails falls back to
the default one (a faulty plugin must not fail the request when the default can still
decide); the default failing is an error.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping

from opentelemetry.trace import Span

from ..base import Classifier
from ..telemetry import Telemetry
from ..telemetry import attributes as a
from ..telemetry.describe import classification_attributes, messages_json
from ..types import Classification, RoutingRequest

log = logging.getLogger(__name__)


class Classify:
    def __init__(
        self, classifiers: Mapping[str, Classifier], default: str, telemetry: Telemetry
    ) -> None:
        self.classifiers = classifiers
        self.default = default
        self.telemetry = telemetry

    async def __call__(self, request: RoutingRequest, parent: Span) -> Classification:
        """Classify ``request`` in a ``classify {name}`` span under ``parent``."""
        name = request.constraints.classifier or self.default
        telemetry = self.telemetry
        if not (telemetry.tracing or telemetry.metering):
            return await self._classify_with(name, request)
        started = time.perf_counter()
        with telemetry.child_span(f"classify {name}", parent) as span:
            if telemetry.capture_content and span.is_recording():
                span.set_attribute(a.GEN_AI_INPUT_MESSAGES, messages_json(request.messages))
            classification = await self._classify_with(name, request)
            if span.is_recording():
                span.set_attributes(classification_attributes(classification))
        if telemetry.metering:
            telemetry.metrics.classifier_duration.record(
                time.perf_counter() - started, {a.CLASSIFIER: classification.classifier}
            )
        return classification

    async def _classify_with(self, name: str, request: RoutingRequest) -> Classification:
        try:
            return await self.classifiers[name].classify(request)
        except Exception:
            if name == self.default:
                raise
            log.exception("classifier %s failed; using %s", name, self.default)
            fallback = await self.classifiers[self.default].classify(request)
            features = {**fallback.features, "classifier_error_fallback": 1.0}
            return dataclasses.replace(fallback, features=features)
