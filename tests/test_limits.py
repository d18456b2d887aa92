"""Bounded input, refused early (issue 11): hostile sizes are refused in milliseconds with a
few named violations, before anything walks the request."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import pytest

from modelrouter.errors import InvalidRequest
from modelrouter.limits import MAX_REPORTED, check_request
from modelrouter.v1 import router_pb2 as pb


@dataclass
class Limits:
    """The documented defaults of ``[limits]``."""

    max_messages: int = 1000
    max_parts_per_message: int = 100
    max_tools: int = 128
    max_schema_bytes: int = 65536
    max_prompt_chars: int = 2_000_000
    max_constraint_entries: int = 256
    max_metadata_entries: int = 64
    max_metadata_value_chars: int = 512
    max_feedback_comment_chars: int = 4096
    max_feedback_source_chars: int = 128
    max_image_bytes: int = 20_971_520


LIMITS = Limits()


def user(text: str) -> pb.Message:
    return pb.Message(role=pb.ROLE_USER, content=text)


def fastest_refusal_s(request: object) -> float:
    """Best of three timings of a refusal: robust to a busy machine, while walking a
    hostile list (tens of milliseconds per million entries) fails every run."""
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with pytest.raises(InvalidRequest):
            check_request(request, LIMITS)  # type: ignore[arg-type]
        timings.append(time.perf_counter() - started)
    return min(timings)


def refusal(request: object, limits: Limits = LIMITS) -> dict[str, str]:
    with pytest.raises(InvalidRequest) as caught:
        check_request(request, limits)  # type: ignore[arg-type]
    return {v.field: v.description for v in caught.value.violations}


def test_a_request_within_every_limit_passes():
    request = pb.ExecuteRequest(
        messages=[user("hi"), pb.Message(role=pb.ROLE_USER, parts=[pb.ContentPart(text="x")])],
        constraints=pb.Constraints(excluded_models=["a"] * 256),
        tools=[pb.Tool(name=f"t{i}", parameters_json="{}") for i in range(128)],
        metadata={f"k{i}": "v" * 512 for i in range(64)},
        stop=["END"],
    )
    check_request(request, LIMITS)
    check_request(pb.SubmitFeedbackRequest(comment="c" * 4096, source="s" * 128), LIMITS)
    check_request(pb.ListModelsRequest(), LIMITS)  # other messages pass unchecked


def test_a_million_excluded_models_is_refused_in_milliseconds_naming_the_field():
    constraints = pb.Constraints()
    constraints.excluded_models.extend(["m"] * 1_000_000)
    request = pb.RouteRequest(messages=[user("hi")], constraints=constraints)
    assert fastest_refusal_s(request) < 0.002
    found = refusal(request)
    assert found == {
        "constraints.excluded_models": (
            "at most 256 entries (limits.max_constraint_entries), got 1000000"
        )
    }


def test_too_many_messages_are_refused_without_walking_them():
    request = pb.ClassifyRequest()
    request.messages.extend([pb.Message()] * 300_000)  # role-less: never looked at
    assert fastest_refusal_s(request) < 0.002
    found = refusal(request)
    assert found == {"messages": "at most 1000 messages (limits.max_messages), got 300000"}


def test_a_huge_prompt_is_refused_at_the_message_that_crosses_the_limit():
    request = pb.ExecuteRequest(messages=[user("a" * 1_500_000), user("b" * 600_000), user("c")])
    found = refusal(request)
    assert list(found) == ["messages[1]"]
    assert "2100000 characters" in found["messages[1]"]
    assert "limits.max_prompt_chars" in found["messages[1]"]


def test_tool_arguments_and_descriptions_count_towards_the_prompt():
    limits = Limits(max_prompt_chars=100)
    call = pb.ToolCall(id="c", name="t", arguments_json='{"x": "' + "y" * 100 + '"}')
    found = refusal(
        pb.RouteRequest(
            messages=[user("hi"), pb.Message(role=pb.ROLE_ASSISTANT, tool_calls=[call])]
        ),
        limits,
    )
    assert list(found) == ["messages[1]"]
    found = refusal(
        pb.RouteRequest(messages=[user("hi")], tools=[pb.Tool(name="t", description="d" * 200)]),
        limits,
    )
    assert list(found) == ["tools"]


def test_parts_tools_schemas_images_and_metadata_are_bounded():
    limits = Limits(
        max_parts_per_message=2,
        max_tools=2,
        max_schema_bytes=10,
        max_image_bytes=4,
        max_metadata_entries=1,
    )
    parts = [pb.ContentPart(text="x")] * 3
    image = pb.ContentPart(image=pb.Image(data=b"12345", media_type="image/png"))
    found = refusal(
        pb.ExecuteRequest(
            messages=[
                pb.Message(role=pb.ROLE_USER, parts=parts),
                pb.Message(role=pb.ROLE_USER, parts=[image]),
            ],
            tools=[pb.Tool(name="a", parameters_json="{}")] * 3,
            response_format=pb.ResponseFormat(json_schema='"éééééé"'),  # 8 chars, 14 bytes
            metadata={"a": "1", "b": "2"},
        ),
        limits,
    )
    assert set(found) == {
        "messages[0].parts",
        "messages[1].parts[0].image.data",
        "tools",
        "response_format.json_schema",
        "metadata",
    }
    assert found["tools"] == "at most 2 tools (limits.max_tools), got 3"
    assert "limits.max_schema_bytes" in found["response_format.json_schema"]


def test_long_metadata_values_and_feedback_strings_are_refused():
    found = refusal(pb.ExecuteRequest(messages=[user("hi")], metadata={"k": "v" * 513}))
    assert "limits.max_metadata_value_chars" in found["metadata['k']"]
    found = refusal(pb.SubmitFeedbackRequest(comment="c" * 4097, source="s" * 3_000_000))
    assert found == {
        "comment": "at most 4096 characters (limits.max_feedback_comment_chars), got 4097",
        "source": "at most 128 characters (limits.max_feedback_source_chars), got 3000000",
    }


def test_a_refusal_lists_at_most_a_few_violations():
    request = pb.ExecuteRequest(messages=[user("hi")])
    request.metadata.update({f"k{i}": "v" * 600 for i in range(60)})
    found = refusal(request)
    assert len(found) == MAX_REPORTED


def test_the_shipped_limits_are_the_documented_defaults():
    from dataclasses import asdict

    from modelrouter.config import load_config

    shipped = load_config().limits
    for key, value in asdict(LIMITS).items():
        assert getattr(shipped, key) == value, key


def test_random_requests_pass_or_are_refused_never_crash():
    from .test_contract_real_traffic import random_request

    rng = random.Random(11)
    tight = Limits(max_messages=3, max_parts_per_message=1, max_tools=2, max_prompt_chars=40)
    outcomes = set()
    for _ in range(2000):
        try:
            check_request(random_request(rng), tight)
            outcomes.add("pass")
        except InvalidRequest as exc:
            assert 1 <= len(exc.violations) <= MAX_REPORTED
            outcomes.add("refused")
    assert outcomes == {"pass", "refused"}
