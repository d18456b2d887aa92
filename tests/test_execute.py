"""Execute and ExecuteStream semantics over a real server with fake providers."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from modelrouter import ProviderError
from modelrouter.config import ExecutionConfig, parse_config
from modelrouter.execution import Backoff, InMemoryCircuitBreaker
from modelrouter.testing import TEST_CONFIG, FakeProvider
from modelrouter.v1 import router_pb2 as pb
from modelrouter.v1 import router_pb2_grpc

from .conftest import rpc_error_details, user

FAST = """
[execution]
max_attempts_per_model = 2
backoff_base_s = 0.001
backoff_max_s = 0.5
circuit_failure_threshold = 3
circuit_cooldown_s = 30
"""


def rate_limited(retry_after_s: float | None = None) -> ProviderError:
    return ProviderError(
        "rate_limit", "HTTP 429: slow down", retryable=True, retry_after_s=retry_after_s
    )


def server_error() -> ProviderError:
    return ProviderError("server_error", "HTTP 500: boom", retryable=True)


def execute_failure(error: grpc.aio.AioRpcError) -> pb.ExecuteFailure:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        if detail.Is(pb.ExecuteFailure.DESCRIPTOR):
            failure = pb.ExecuteFailure()
            detail.Unpack(failure)
            return failure
    raise AssertionError("no ExecuteFailure in the status details")


@pytest.fixture
async def stub(modelrouter_server_factory):
    server = await modelrouter_server_factory(config=parse_config(TEST_CONFIG + FAST))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = router_pb2_grpc.ModelRouterStub(channel)
        stub.server = server
        yield stub


async def test_execute_reports_usage_cost_decision_and_attempts(stub):
    FakeProvider.enqueue("budget", "Paris is the capital.")
    response = await stub.Execute(
        pb.ExecuteRequest(messages=user("What is the capital of France?"))
    )
    assert response.text == "Paris is the capital."
    assert (response.model, response.provider) == ("tiny", "budget")
    assert (response.usage.input_tokens, response.usage.output_tokens) == (10, 4)
    # tiny: $0.1 in, $0.2 out per Mtok.
    assert response.cost_usd == pytest.approx((10 * 0.1 + 4 * 0.2) / 1e6)
    assert len(response.decision_id) == 36
    assert response.classification.classifier == "rules"
    assert response.finish_reason == "stop"
    assert response.latency_ms > 0
    [attempt] = response.attempts
    assert (attempt.model, attempt.outcome, attempt.error_type) == ("tiny", "ok", "")


async def test_retryable_error_is_retried_on_the_same_model(stub):
    FakeProvider.enqueue("budget", rate_limited(0.01), "second time lucky")
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    assert response.text == "second time lucky"
    assert [(a.model, a.outcome, a.error_type) for a in response.attempts] == [
        ("tiny", "error", "rate_limit"),
        ("tiny", "ok", ""),
    ]


async def test_persistent_server_errors_fail_over_to_the_next_model(stub):
    FakeProvider.enqueue("budget", server_error(), server_error(), server_error(), server_error())
    FakeProvider.enqueue("premium", "from the big one")
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    assert response.text == "from the big one"
    assert (response.model, response.provider) == ("large", "premium")
    assert [a.model for a in response.attempts] == [
        "tiny",
        "tiny",
        "small-coder",
        "small-coder",
        "large",
    ]
    # Failed attempts reported no usage, so only the answering call costs money.
    assert response.cost_usd == pytest.approx(response.attempts[-1].cost_usd)


async def test_bad_request_moves_to_next_model_without_retry(stub):
    FakeProvider.enqueue(
        "budget", ProviderError("bad_request", "HTTP 400: nope", retryable=False), "ok"
    )
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    assert [(a.model, a.error_type) for a in response.attempts] == [
        ("tiny", "bad_request"),
        ("small-coder", ""),
    ]


async def test_context_length_error_skips_models_with_no_larger_window(stub):
    overflow = ProviderError("context_length", "HTTP 400: prompt is too long", retryable=False)
    FakeProvider.enqueue("budget", overflow)
    FakeProvider.enqueue("premium", "fits")
    # small-coder (16k) is larger than tiny (2k) so it is tried; make it overflow as well.
    FakeProvider.enqueue("budget", overflow)
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    assert [(a.model, a.error_type) for a in response.attempts] == [
        ("tiny", "context_length"),
        ("small-coder", "context_length"),
        ("large", ""),
    ]


async def test_all_attempts_failing_is_unavailable_with_attempts_in_details(stub):
    FakeProvider.enqueue("budget", *[server_error()] * 4)
    FakeProvider.enqueue("premium", *[rate_limited(0.2)] * 2)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "all 6 attempt(s) failed" in error.details()
    failure = execute_failure(error)
    assert [a.error_type for a in failure.attempts] == ["server_error"] * 4 + ["rate_limit"] * 2
    assert all(a.outcome == "error" and a.error_message for a in failure.attempts)
    info = rpc_error_details(error)["ErrorInfo"]
    assert info.reason == "ALL_ATTEMPTS_FAILED"
    assert info.metadata["last_error_type"] == "rate_limit"
    retry_info = [
        d
        for d in rpc_status.from_call(error).details
        if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)
    ]
    assert retry_info, "the upstream's Retry-After is passed on as RetryInfo"


async def test_deadline_exceeded_when_the_callers_deadline_runs_out(stub):
    async def slow(call):
        await asyncio.sleep(5)
        return "too late"

    FakeProvider.enqueue("budget", slow)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hello")), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_server_request_timeout_ends_the_call_with_deadline_exceeded(
    modelrouter_server_factory,
):
    config = parse_config(
        TEST_CONFIG + FAST.replace("circuit_cooldown_s = 30", "request_timeout_s = 0.2")
    )
    server = await modelrouter_server_factory(config=config)

    async def slow(call):
        assert call.timeout_s is not None and call.timeout_s <= 0.2
        await asyncio.sleep(5)
        return "too late"

    FakeProvider.enqueue("budget", slow)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router_pb2_grpc.ModelRouterStub(channel).Execute(
                pb.ExecuteRequest(messages=user("hi"))
            )
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    failure = execute_failure(caught.value)
    assert [a.error_type for a in failure.attempts] == ["timeout"]


async def test_client_cancellation_cancels_the_provider_call(stub):
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(call):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    FakeProvider.enqueue("budget", hang)
    call = stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    await asyncio.wait_for(started.wait(), 5)
    call.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)


async def test_explicit_model_is_called_first(stub):
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hello"), model="large"))
    assert response.model == "large"


async def test_explicit_model_without_key_is_failed_precondition_naming_the_variable(
    modelrouter_server_factory,
):
    config = parse_config(
        TEST_CONFIG.replace(
            '[providers.premium]\ntype = "fake"',
            '[providers.premium]\ntype = "needs-key"\napi_key_env = "PREMIUM_KEY"',
        )
    )
    server = await modelrouter_server_factory(config=config)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await router_pb2_grpc.ModelRouterStub(channel).Execute(
                pb.ExecuteRequest(messages=user("hi"), model="large")
            )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert rpc_error_details(caught.value)["ErrorInfo"].reason == "MODEL_UNAVAILABLE"


async def test_bad_temperature_is_invalid_argument(stub):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Execute(pb.ExecuteRequest(messages=user("hi"), temperature=3.0))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert rpc_error_details(caught.value)["BadRequest"].field_violations[0].field == "temperature"


async def test_temperature_and_max_output_tokens_reach_the_provider(stub):
    await stub.Execute(
        pb.ExecuteRequest(
            messages=user("hi"), temperature=0.5, constraints=pb.Constraints(max_output_tokens=42)
        )
    )
    [(_, call)] = FakeProvider.history
    assert (call.temperature, call.max_output_tokens) == (0.5, 42)


async def test_circuit_opens_after_consecutive_failures_and_selection_skips_the_model(stub):
    FakeProvider.enqueue("budget", *[server_error()] * 4)
    FakeProvider.enqueue("premium", "a", "b")
    await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    # tiny failed twice in the first call; one more failure opens it (threshold 3).
    FakeProvider.enqueue("budget", server_error(), "small-coder answers")
    response = await stub.Execute(pb.ExecuteRequest(messages=user("hello")))
    assert response.model == "small-coder"
    models = {m.name: m for m in (await stub.ListModels(pb.ListModelsRequest())).models}
    assert not models["tiny"].available
    assert "circuit open after 3 consecutive failures" in models["tiny"].unavailable_reason
    route = await stub.Route(pb.RouteRequest(messages=user("hello")))
    assert route.selected.model == "small-coder"
    assert "skipped while cooling down: tiny (circuit open after 3" in route.reason


async def test_stream_sends_deltas_then_summary(stub):
    FakeProvider.enqueue("budget", "one two three")
    messages = [m async for m in stub.ExecuteStream(pb.ExecuteRequest(messages=user("count")))]
    assert [m.delta for m in messages[:-1]] == ["one", " two", " three"]
    summary = messages[-1].summary
    assert summary.model == "tiny" and summary.text == ""
    assert summary.usage.output_tokens == 3
    assert summary.cost_usd > 0
    assert [a.outcome for a in summary.attempts] == ["ok"]


async def test_stream_fails_over_before_the_first_delta(stub):
    FakeProvider.enqueue("budget", *[server_error()] * 4)
    FakeProvider.enqueue("premium", "fallback answer")
    messages = [m async for m in stub.ExecuteStream(pb.ExecuteRequest(messages=user("hi")))]
    assert "".join(m.delta for m in messages) == "fallback answer"
    assert messages[-1].summary.model == "large"


async def test_empty_deadline_leaves_no_attempt():
    # The deadline and backoff are plain objects: no gRPC needed to check them.
    backoff = Backoff(base_s=1.0, max_s=4.0)
    assert all(0 <= backoff.delay(n) <= min(4.0, 2**n) for n in range(6) for _ in range(20))
    assert backoff.delay(0, retry_after_s=2.5) == 2.5
    assert backoff.delay(0, retry_after_s=9.0) is None


async def test_circuit_breaker_half_opens_after_cooldown():
    now = [0.0]
    breaker = InMemoryCircuitBreaker(failure_threshold=2, cooldown_s=5, clock=lambda: now[0])
    await breaker.record_failure("m", "bad_request")  # the request's fault: not counted
    await breaker.record_failure("m", "server_error")
    assert breaker.open_reason("m") is None
    await breaker.record_failure("m", "timeout")
    assert "circuit open" in (breaker.open_reason("m") or "")
    now[0] = 5.1
    assert breaker.open_reason("m") is None
    await breaker.record_failure("m", "timeout")
    assert breaker.open_reason("m") is not None, "a failed trial call cools the model again"
    await breaker.record_success("m")
    assert breaker.open_reason("m") is None


def test_execution_config_is_validated():
    from modelrouter.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"execution\.max_attempts_per_model: expected an integer >= 1"
    ):
        parse_config(TEST_CONFIG + "[execution]\nmax_attempts_per_model = 0\n", source="c.toml")
    with pytest.raises(ConfigError, match=r"execution\.retries"):
        parse_config(TEST_CONFIG + "[execution]\nretries = 3\n", source="c.toml")
    assert parse_config(TEST_CONFIG).execution == ExecutionConfig()
    assert replace(ExecutionConfig(), backoff_max_s=1).backoff_max_s == 1
