"""Stage 1, validate: refuse names that match nothing, before any work is done.

A typo in a classifier, model or provider name must never silently change the routing,
so each is checked against what this server actually has, and every bad field is
reported at once with the valid choices.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ..errors import FieldViolation, InvalidRequest, NotFound
from ..types import RoutingRequest


class Validate:
    """Checks a request's names against what this server has."""

    def __init__(
        self,
        *,
        classifiers: Collection[str],
        models: Mapping[str, object],
        providers: Collection[str],
    ) -> None:
        self.classifiers = classifiers
        self.models = models
        self.providers = providers

    def __call__(self, request: RoutingRequest) -> None:
        """Raise ``InvalidRequest`` listing every name in ``request`` that matches nothing."""
        classifiers, models, providers = self.classifiers, self.models, self.providers
        constraints = request.constraints
        violations: list[FieldViolation] = []
        if constraints.classifier is not None and constraints.classifier not in classifiers:
            violations.append(
                FieldViolation(
                    "constraints.classifier",
                    f"unknown classifier {constraints.classifier!r}; valid: "
                    f"{', '.join(sorted(classifiers)) or 'none loaded'}",
                )
            )
        for i, model in enumerate(constraints.excluded_models):
            if model not in models:
                violations.append(
                    FieldViolation(
                        f"constraints.excluded_models[{i}]",
                        f"unknown model {model!r}; valid: {', '.join(models)}",
                    )
                )
        for i, provider in enumerate(constraints.allowed_providers):
            if provider not in providers:
                violations.append(
                    FieldViolation(
                        f"constraints.allowed_providers[{i}]",
                        f"unknown provider {provider!r}; valid: {', '.join(sorted(providers))}",
                    )
                )
        if violations:
            raise InvalidRequest(violations)
        if request.model is not None and request.model not in models:
            # The same answer as GetModel gives for the same mistake.
            raise NotFound("model", request.model, list(models))
