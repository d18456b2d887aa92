"""The llm-judge and cascade classifiers, with a fake provider that replays canned answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from modelrouter import (
    Classification,
    Classifier,
    Completion,
    CompletionChunk,
    Complexity,
    Provider,
    ProviderCall,
    ProviderError,
    ProviderSettings,
    RoutingRequest,
    TaskType,
    Usage,
)
from modelrouter_judge import CascadeClassifier, JudgeClassifier, parse_verdict


class FakeProvider(Provider):
    """Answers with queued texts (or raises queued errors, or hangs); records every call."""

    kind = "fake"
    requires_api_key = False

    def __init__(self, *answers: str | Exception | None) -> None:
        super().__init__(ProviderSettings(name="fake"))
        self.answers = list(answers)
        self.calls: list[ProviderCall] = []

    async def complete(self, call: ProviderCall) -> Completion:
        self.calls.append(call)
        answer = self.answers.pop(0)
        if answer is None:
            await asyncio.sleep(3600)  # never answers in time
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, str)
        return Completion(text=answer, model=call.model, usage=Usage(10, 10))

    async def stream(self, call: ProviderCall) -> AsyncIterator[CompletionChunk]:
        raise NotImplementedError
        yield CompletionChunk()  # pragma: no cover


class FixedRules(Classifier):
    """Stands in for the rules classifier with a fixed score."""

    name = "rules"

    def __init__(self, score: float) -> None:
        self.score = score
        self.calls = 0

    async def classify(self, request: RoutingRequest) -> Classification:
        self.calls += 1
        return Classification(
            Complexity.MODERATE, TaskType.QA, self.score, 0.6, self.name, {"word_count": 3.0}
        )


REQUEST = RoutingRequest.from_prompt("Prove that there are infinitely many primes.")


def classify(clf: Classifier) -> Classification:
    return asyncio.run(clf.classify(REQUEST))


def test_judge_verdict_sets_tier_task_and_band_midpoint_score() -> None:
    verdict = '{"complexity": "complex", "task_type": "REASONING", "confidence": 0.9}'
    provider = FakeProvider(verdict)
    result = classify(JudgeClassifier(provider, "cheap-model", fallback=FixedRules(0.5)))
    assert (result.complexity, result.task_type) == (Complexity.COMPLEX, TaskType.REASONING)
    assert result.score == pytest.approx(0.625)
    assert result.confidence == pytest.approx(0.9)
    assert result.classifier == "llm-judge" and result.features["judge_fallback"] == 0.0
    call = provider.calls[0]
    # The prompt travels as data, between the tags the instructions name.
    assert call.model == "cheap-model" and REQUEST.prompt in call.messages[-1].content


def test_judge_accepts_json_alone_in_a_code_fence() -> None:
    text = '```json\n{"complexity": "SIMPLE", "task_type": "chat"}\n```'
    assert parse_verdict(text) == (Complexity.SIMPLE, TaskType.CHAT, 0.7)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ('{"complexity": "HARD", "task_type": "QA"}', "malformed"),
        ("complexity: simple", "malformed"),
        ("I'm sorry, but I can't help with that request.", "refusal"),
        (ProviderError("rate_limit", "slow down", retryable=True), "provider_error"),
    ],
)
def test_judge_falls_back_to_rules_and_says_why(answer: str | Exception, reason: str) -> None:
    rules = FixedRules(0.42)
    result = classify(JudgeClassifier(FakeProvider(answer), "m", fallback=rules))
    assert rules.calls == 1
    assert result.score == pytest.approx(0.42) and result.task_type is TaskType.QA
    assert result.features["judge_fallback"] == 1.0
    assert result.features[f"judge_fallback_{reason}"] == 1.0


def test_judge_times_out_and_falls_back_to_rules() -> None:
    rules = FixedRules(0.42)
    judge = JudgeClassifier(FakeProvider(None), "m", timeout_s=0.05, fallback=rules)
    result = classify(judge)
    assert result.features["judge_fallback_timeout"] == 1.0
    assert result.score == pytest.approx(0.42)


def test_judge_default_fallback_is_the_rules_classifier() -> None:
    pytest.importorskip("modelrouter_rules")
    result = classify(JudgeClassifier(FakeProvider("nope"), "m"))
    assert result.features["judge_fallback"] == 1.0
    assert "word_count" in result.features  # a rules feature


@pytest.mark.parametrize(
    ("score", "judged"), [(0.1, False), (0.3, True), (0.55, True), (0.7, True), (0.9, False)]
)
def test_cascade_consults_the_judge_only_in_the_ambiguous_band(score: float, judged: bool) -> None:
    provider = FakeProvider('{"complexity": "COMPLEX", "task_type": "CODE"}')
    cascade = CascadeClassifier(JudgeClassifier(provider, "m"), rules=FixedRules(score))
    result = classify(cascade)
    assert len(provider.calls) == int(judged)
    assert result.classifier == "cascade"
    assert result.features["cascade_judged"] == float(judged)
    expected = Complexity.COMPLEX if judged else Complexity.MODERATE
    assert result.complexity is expected


def test_cascade_band_is_configurable_and_keeps_rules_when_the_judge_fails() -> None:
    provider = FakeProvider("garbage")
    cascade = CascadeClassifier(
        JudgeClassifier(provider, "m"), rules=FixedRules(0.9), band=(0.8, 1.0)
    )
    result = classify(cascade)
    assert len(provider.calls) == 1
    assert result.score == pytest.approx(0.9) and result.features["judge_fallback"] == 1.0


def test_cascade_rejects_an_inverted_band() -> None:
    with pytest.raises(ValueError):
        CascadeClassifier(JudgeClassifier(FakeProvider(), "m"), band=(0.7, 0.3))


def test_judge_hook_registers_nothing_without_configuration() -> None:
    import modelrouter_judge
    from modelrouter import PluginContext

    registered: list[Classifier] = []
    modelrouter_judge.register_classifiers(registered.append, PluginContext())
    assert registered == []


JUDGE_CONFIG = """
[classifiers.llm-judge]
model = "small-coder"
timeout_s = 1.0
max_tier_shift = 3

[classifiers.cascade]
band = [0.0, 1.0]
"""


async def test_configured_judge_asks_a_catalog_model_through_the_server(
    modelrouter_server_factory,
) -> None:
    import grpc

    from modelrouter.config import parse_config
    from modelrouter.testing import TEST_CONFIG
    from modelrouter.testing import FakeProvider as ServerFakeProvider
    from modelrouter.v1 import router_pb2 as pb
    from modelrouter.v1 import router_pb2_grpc

    server = await modelrouter_server_factory(parse_config(TEST_CONFIG + JUDGE_CONFIG))
    verdict = '{"complexity": "EXPERT", "task_type": "REASONING", "confidence": 0.9}'
    ServerFakeProvider.enqueue("budget", verdict, "no json here")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        plugins = await stub.ListPlugins(pb.ListPluginsRequest())
        assert {"llm-judge", "cascade"} <= set(plugins.classifiers)
        messages = [pb.Message(role=pb.ROLE_USER, content="hi")]
        judged = await stub.Route(
            pb.RouteRequest(messages=messages, constraints=pb.Constraints(classifier="llm-judge"))
        )
        fallen_back = await stub.Classify(
            pb.ClassifyRequest(messages=messages, constraints=pb.Constraints(classifier="cascade"))
        )
    assert judged.classification.complexity == pb.COMPLEXITY_EXPERT
    assert judged.classification.task_type == pb.TASK_TYPE_REASONING
    assert judged.selected.model == "large"
    assert fallen_back.features["judge_fallback_malformed"] == 1.0
    # Both judge calls went to the configured model's upstream id, through its provider.
    assert [call.model for _, call in ServerFakeProvider.history] == ["small-coder"] * 2


async def test_unknown_judge_model_stops_startup_naming_the_key(modelrouter_server_factory) -> None:
    from modelrouter.config import parse_config
    from modelrouter.errors import ConfigError
    from modelrouter.testing import TEST_CONFIG

    config = parse_config(TEST_CONFIG + JUDGE_CONFIG.replace("small-coder", "gpt-9"), source="c")
    with pytest.raises(
        ConfigError, match=r"classifiers\.llm-judge\.model: expected a catalog model"
    ):
        await modelrouter_server_factory(config)
