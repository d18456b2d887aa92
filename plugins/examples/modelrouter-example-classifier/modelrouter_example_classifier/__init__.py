"""A classifier that judges complexity by conversation length alone.

Long conversations carry more context for a model to keep straight, so they go to
stronger models; everything else about the request is ignored. Everything used here is
imported from ``modelrouter``, as every plugin should.
"""

from __future__ import annotations

from collections.abc import Callable

from modelrouter import Classification, Classifier, Complexity, RoutingRequest, TaskType, hookimpl

#: Upper token bound of each tier; above the last one a request is EXPERT.
TIER_LIMITS = ((Complexity.SIMPLE, 50), (Complexity.MODERATE, 400), (Complexity.COMPLEX, 2000))


class ConversationLengthClassifier(Classifier):
    name = "conversation-length"

    async def classify(self, request: RoutingRequest) -> Classification:
        words = len(request.text.split())
        complexity = next(
            (tier for tier, limit in TIER_LIMITS if words <= limit), Complexity.EXPERT
        )
        return Classification(
            complexity=complexity,
            task_type=TaskType.CHAT,
            # The middle of the tier's quarter of [0, 1], so score and tier agree.
            score=(complexity - 1) / 4 + 0.125,
            confidence=0.5,
            classifier=self.name,
            features={"words": float(words)},
        )


@hookimpl
def register_classifiers(register: Callable[[Classifier], None]) -> None:
    register(ConversationLengthClassifier())
