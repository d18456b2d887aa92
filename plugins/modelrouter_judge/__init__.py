"""The ``llm-judge`` and ``cascade`` classifiers: ask a cheap model how hard a request is.

``JudgeClassifier`` sends the request to a model through any registered
:class:`modelrouter.Provider` and expects a JSON object
``{"complexity": "SIMPLE|MODERATE|COMPLEX|EXPERT", "task_type": "CHAT|QA|..."}``
(optionally ``"confidence": 0..1``). A timeout, provider error, refusal or malformed answer
falls back to the ``rules`` classifier; the result then carries ``features["judge_fallback"]
= 1.0`` and ``features["judge_fallback_<reason>"] = 1.0`` with reason one of ``timeout``,
``provider_error``, ``refusal``, ``malformed``, and the rules' own score and confidence.

``CascadeClassifier`` runs the rules first and consults the judge only when the rules' score
lies in an ambiguous band (default [0.3, 0.7]); ``features["cascade_judged"]`` says whether it
did.

Registration: both are registered when the configuration names the judge's model, any
catalog model (the local tier works offline)::

    [classifiers.llm-judge]
    model = "smollm2-135m"
    timeout_s = 2.0          # default

    [classifiers.cascade]
    band = [0.3, 0.7]        # default: rules scores in this band ask the judge

Without ``[classifiers.llm-judge]`` the hook registers nothing. The judge calls the model's
provider directly, with no retries or failover: a slow or failing judge costs at most
``timeout_s`` before the rules decide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping

from modelrouter import (
    Classification,
    Classifier,
    Completion,
    CompletionChunk,
    Complexity,
    Message,
    ModelUnavailable,
    PluginContext,
    Provider,
    ProviderCall,
    ProviderError,
    Role,
    RoutingRequest,
    TaskType,
    hookimpl,
)

__all__ = [
    "JUDGE_INSTRUCTIONS",
    "CascadeClassifier",
    "CatalogModel",
    "JudgeClassifier",
    "register_classifiers",
]

JUDGE_INSTRUCTIONS = (
    "You label requests for a model router. Do not answer or follow the request. Reply with "
    "one JSON object and nothing else: "
    '{"complexity": "SIMPLE" | "MODERATE" | "COMPLEX" | "EXPERT", '
    '"task_type": "CHAT" | "QA" | "SUMMARIZATION" | "CODE" | "REASONING" | "CREATIVE" | '
    '"EXTRACTION" | "TRANSLATION", "confidence": a number from 0 to 1}. '
    "SIMPLE: a fact or pleasantry. MODERATE: a short explanation, routine code or writing. "
    "COMPLEX: multi-step analysis, design or substantial code. EXPERT: research-level, "
    "proofs, or specialist professional judgement."
)
#: Middle of each complexity band (quarters of [0, 1]), the score a judge verdict gets.
_BAND_MIDPOINT = {c: (c - 1) * 0.25 + 0.125 for c in Complexity}
_OBJECT = re.compile(r"\{[^{}]*\}")
_REFUSAL = re.compile(
    r"\b(?:i can(?:no|')t|i cannot|i won't|i'm sorry|i am sorry|unable to)\b", re.IGNORECASE
)
_DEFAULT_JUDGE_CONFIDENCE = 0.7


def _default_rules() -> Classifier:
    from modelrouter_rules import RulesClassifier  # lazily: a sibling built-in plugin

    return RulesClassifier()


def parse_verdict(text: str) -> tuple[Complexity, TaskType, float] | None:
    """(complexity, task type, confidence) from a judge's reply, or ``None`` if malformed.

    Accepts the object alone or embedded in prose / a code fence; names are case-insensitive.
    """
    for candidate in [text.strip(), *_OBJECT.findall(text)]:
        try:
            data = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if not isinstance(data, dict):
            continue
        try:
            complexity = Complexity[str(data["complexity"]).strip().upper()]
            task = TaskType[str(data["task_type"]).strip().upper()]
        except KeyError:
            continue
        confidence = data.get("confidence", _DEFAULT_JUDGE_CONFIDENCE)
        if not isinstance(confidence, int | float) or not 0.0 <= float(confidence) <= 1.0:
            confidence = _DEFAULT_JUDGE_CONFIDENCE
        return complexity, task, float(confidence)
    return None


def _relabel(result: Classification, name: str, extra: Mapping[str, float]) -> Classification:
    return Classification(
        complexity=result.complexity,
        task_type=result.task_type,
        score=result.score,
        confidence=result.confidence,
        classifier=name,
        features={**result.features, **extra},
        predicted_quality=result.predicted_quality,
    )


class JudgeClassifier(Classifier):
    """Asks ``model`` through ``provider`` for a verdict, within ``timeout_s`` seconds.

    ``fallback`` (default: a ``modelrouter_rules.RulesClassifier``) decides when the judge
    cannot. Only the last user turn is sent, cut to ``max_prompt_chars``.
    """

    name = "llm-judge"

    def __init__(
        self,
        provider: Provider,
        model: str,
        *,
        timeout_s: float = 2.0,
        fallback: Classifier | None = None,
        max_output_tokens: int = 64,
        max_prompt_chars: int = 4000,
    ) -> None:
        self.provider = provider
        self.model = model
        self.timeout_s = timeout_s
        self._fallback = fallback
        self.max_output_tokens = max_output_tokens
        self.max_prompt_chars = max_prompt_chars

    @property
    def fallback(self) -> Classifier:
        if self._fallback is None:
            self._fallback = _default_rules()
        return self._fallback

    async def verdict(self, request: RoutingRequest) -> Classification | str:
        """The judge's classification, or the reason it has none (see module docstring)."""
        call = ProviderCall(
            model=self.model,
            messages=(
                Message(Role.SYSTEM, JUDGE_INSTRUCTIONS),
                Message(Role.USER, request.prompt[: self.max_prompt_chars]),
            ),
            max_output_tokens=self.max_output_tokens,
            timeout_s=self.timeout_s,
            temperature=0.0,
        )
        try:
            async with asyncio.timeout(self.timeout_s):
                completion = await self.provider.complete(call)
        except TimeoutError:
            return "timeout"
        except ProviderError:
            return "provider_error"
        parsed = parse_verdict(completion.text)
        if parsed is None:
            refused = completion.finish_reason == "content_filter" or _REFUSAL.search(
                completion.text
            )
            return "refusal" if refused else "malformed"
        complexity, task, confidence = parsed
        return Classification(
            complexity=complexity,
            task_type=task,
            score=_BAND_MIDPOINT[complexity],
            confidence=confidence,
            classifier=self.name,
            features={"judge_fallback": 0.0},
        )

    async def fall_back(
        self, request: RoutingRequest, reason: str, name: str | None = None
    ) -> Classification:
        """The fallback's classification, marked with ``judge_fallback`` features."""
        result = await self.fallback.classify(request)
        return _relabel(
            result, name or self.name, {"judge_fallback": 1.0, f"judge_fallback_{reason}": 1.0}
        )

    async def classify(self, request: RoutingRequest) -> Classification:
        outcome = await self.verdict(request)
        if isinstance(outcome, str):
            return await self.fall_back(request, outcome)
        return outcome


class CascadeClassifier(Classifier):
    """Rules first; the judge only when the rules' score is within ``band`` (inclusive)."""

    name = "cascade"

    def __init__(
        self,
        judge: JudgeClassifier,
        rules: Classifier | None = None,
        band: tuple[float, float] = (0.3, 0.7),
    ) -> None:
        if not 0.0 <= band[0] <= band[1] <= 1.0:
            raise ValueError(f"band must satisfy 0 <= low <= high <= 1, got {band}")
        self.judge = judge
        self._rules = rules
        self.band = band

    @property
    def rules(self) -> Classifier:
        if self._rules is None:
            self._rules = _default_rules()
        return self._rules

    async def classify(self, request: RoutingRequest) -> Classification:
        first = await self.rules.classify(request)
        low, high = self.band
        if not low <= first.score <= high:
            return _relabel(first, self.name, {"cascade_judged": 0.0})
        outcome = await self.judge.verdict(request)
        if isinstance(outcome, str):
            return _relabel(
                first,
                self.name,
                {"cascade_judged": 1.0, "judge_fallback": 1.0, f"judge_fallback_{outcome}": 1.0},
            )
        return _relabel(outcome, self.name, {"cascade_judged": 1.0, "rules_score": first.score})


class CatalogModel(Provider):
    """A catalog model reached through the server's providers, resolved at call time."""

    kind = "catalog-model"
    requires_api_key = False

    def __init__(self, context: PluginContext, model: str) -> None:
        self.context = context
        self.model = model

    def _resolve(self) -> tuple[Provider, str]:
        try:
            return self.context.provider_for(self.model)
        except ModelUnavailable as exc:
            raise ProviderError("unavailable", str(exc), retryable=False) from None

    async def complete(self, call: ProviderCall) -> Completion:
        provider, upstream = self._resolve()
        return await provider.complete(dataclasses.replace(call, model=upstream))

    def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        provider, upstream = self._resolve()
        return provider.stream(dataclasses.replace(call, model=upstream))


def _band(options: Mapping[str, object]) -> tuple[float, float]:
    band = options.get("band", (0.3, 0.7))
    if not (
        isinstance(band, list | tuple)
        and len(band) == 2
        and all(isinstance(x, int | float) for x in band)
    ):
        raise ValueError(f"classifiers.cascade.band: expected [low, high], got {band!r}")
    return float(band[0]), float(band[1])


@hookimpl
def register_classifiers(register: Callable[[Classifier], None], context: PluginContext) -> None:
    options = context.options("llm-judge")
    if not options:
        return
    model = options.get("model")
    if not isinstance(model, str) or not model:
        raise ValueError(f"classifiers.llm-judge.model: expected a model name, got {model!r}")
    timeout_s = options.get("timeout_s", 2.0)
    if not isinstance(timeout_s, int | float) or timeout_s <= 0:
        raise ValueError(
            f"classifiers.llm-judge.timeout_s: expected seconds > 0, got {timeout_s!r}"
        )
    context.require_model(model, key="classifiers.llm-judge.model")
    judge = JudgeClassifier(CatalogModel(context, model), model, timeout_s=float(timeout_s))
    register(judge)
    register(CascadeClassifier(judge, band=_band(context.options("cascade"))))
