"""Behaviour of the built-in ``rules`` classifier (plugins/modelrouter_rules)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

import modelrouter
import modelrouter.hookspecs
import modelrouter_rules
from modelrouter import (
    Classification,
    Classifier,
    Complexity,
    Message,
    Role,
    RoutingRequest,
    TaskType,
)
from modelrouter_rules import TIER_BANDS, RulesClassifier
from modelrouter_rules.patterns import TASK_PATTERNS, TIER_PATTERNS

FILLER = "the cat sat on the mat near the door "  # nine words that match no pattern


def classify(
    prompt: str | RoutingRequest, classifier: RulesClassifier | None = None
) -> Classification:
    request = prompt if isinstance(prompt, RoutingRequest) else RoutingRequest.from_prompt(prompt)
    return asyncio.run((classifier or RulesClassifier()).classify(request))


def conversation(*turns: tuple[Role, str]) -> RoutingRequest:
    return RoutingRequest(messages=tuple(Message(role, text) for role, text in turns))


def in_band(result: Classification) -> bool:
    low, high = TIER_BANDS[result.complexity]
    if result.complexity is Complexity.EXPERT:
        return low <= result.score <= high
    return low <= result.score < high


@pytest.mark.parametrize(
    ("prompt", "feature"),
    [
        (
            "The service feels somewhat isolated from the rest of the cluster.",
            "tier_matches_simple",
        ),
        ("Nowhere is quieter than the library.", "tier_matches_simple"),
        ("Please redefine the team boundaries for next quarter.", "tier_matches_simple"),
        ("Can you proofread my cover letter?", "tier_matches_expert"),
        ("I bought a waterproof jacket and improved my posture.", "tier_matches_expert"),
        ("Reanalyzed numbers look fine to me.", "tier_matches_complex"),
        ("The somewhat isolated village.", "task_matches_qa"),
        ("This car was made in Germany.", "task_matches_translation"),
    ],
)
def test_patterns_only_match_whole_words(prompt: str, feature: str) -> None:
    assert classify(prompt).features[feature] == 0.0


@pytest.mark.parametrize(
    ("prompt", "feature"),
    [
        ("What is a monad?", "tier_matches_simple"),
        ("What\u2019s a monad?", "tier_matches_simple"),
        ("Define entropy.", "tier_matches_simple"),
        ("Prove it.", "tier_matches_expert"),
        ("Analyze the logs.", "tier_matches_complex"),
        ("Weigh the trade-offs of each option.", "tier_matches_complex"),
        ("Go step-by-step.", "multi_step_markers"),
        ("TL;DR of this thread please", "task_matches_summarization"),
    ],
)
def test_patterns_match_the_word_itself(prompt: str, feature: str) -> None:
    assert classify(prompt).features[feature] >= 1.0


@pytest.mark.parametrize(
    ("prompt", "feature"),
    [
        ("What is a fjord? Our village is somewhat isolated.", "tier_matches_simple"),
        ("Define the term now; we may redefine it later.", "tier_matches_simple"),
        ("Give one proof and proofread the rest.", "tier_matches_expert"),
        ("Made in Germany, explained in German.", "task_matches_translation"),
    ],
)
def test_partial_words_do_not_count_when_the_whole_word_also_appears(
    prompt: str, feature: str
) -> None:
    assert classify(prompt).features[feature] == 1.0


def test_most_demanding_tier_wins_whatever_the_word_order() -> None:
    forward = classify("What is a group? Prove that every subgroup of a cyclic group is cyclic.")
    backward = classify("Prove that every subgroup of a cyclic group is cyclic. What is a group?")

    assert forward.complexity is backward.complexity is Complexity.EXPERT
    assert forward.features["tier_matches_simple"] >= 1.0


@pytest.mark.parametrize(
    "prompt",
    [
        "What is a group? Prove that every subgroup of a cyclic group is cyclic.",
        "Explain and compare these two designs, then analyze the trade-offs.",
        "Translate this story into Spanish and summarize it.",
        "What does this function return?\n```python\ndef f(x):\n    return x * 2\n```",
    ],
)
def test_result_does_not_depend_on_pattern_table_order(prompt: str) -> None:
    reordered = RulesClassifier(
        tier_patterns=dict(reversed(list(TIER_PATTERNS.items()))),
        task_patterns=dict(reversed(list(TASK_PATTERNS.items()))),
    )

    assert classify(prompt, reordered) == classify(prompt)


def test_malformed_vocabulary_entry_is_rejected_when_the_classifier_is_built() -> None:
    with pytest.raises(ValueError, match="Trade-off"):
        RulesClassifier(tier_patterns={Complexity.COMPLEX: ("Trade-off",)})


def test_custom_vocabulary_replaces_the_built_in_tables() -> None:
    classifier = RulesClassifier(
        tier_patterns={Complexity.EXPERT: ("quantum {field,gauge} theor{y,ies}",)},
        task_patterns={TaskType.REASONING: ("gauge",)},
    )

    result = classify("Tell me about quantum field theory and gauge choices.", classifier)

    assert result.complexity is Complexity.EXPERT
    assert result.task_type is TaskType.REASONING


@pytest.mark.parametrize(
    ("prompt", "task"),
    [
        ("Hey, good morning! How are you doing today?", TaskType.CHAT),
        ("What is the capital of Australia?", TaskType.QA),
        ("Summarize the key points of the meeting notes below.", TaskType.SUMMARIZATION),
        ("Write a Python function that reverses a linked list.", TaskType.CODE),
        (
            "A bat and a ball cost 1.10 in total; calculate the price of the ball.",
            TaskType.REASONING,
        ),
        ("Write a short poem about the sea at night.", TaskType.CREATIVE),
        (
            "Extract all email addresses and phone numbers from the following text.",
            TaskType.EXTRACTION,
        ),
        ("Translate 'where is the train station' into German.", TaskType.TRANSLATION),
    ],
)
def test_each_task_type_is_detected_from_a_realistic_prompt(prompt: str, task: TaskType) -> None:
    assert classify(prompt).task_type is task


def test_prompt_matching_no_task_pattern_defaults_to_chat_with_low_confidence() -> None:
    result = classify("Blue lamps over quiet rivers.")

    assert result.task_type is TaskType.CHAT
    assert result.confidence < classify("What is the capital of Peru?").confidence


def test_task_tie_goes_to_the_more_specific_type() -> None:
    # One SUMMARIZATION match ("summarize") against one CREATIVE match ("story").
    result = classify("Please summarize this story.")

    assert result.features["task_matches_summarization"] == result.features["task_matches_creative"]
    assert result.task_type is TaskType.SUMMARIZATION


def test_longer_prompt_raises_tier() -> None:
    short = classify("Tell me about " + FILLER)
    medium = classify("Tell me about " + FILLER * 8)
    long = classify("Tell me about " + FILLER * 26)

    assert short.complexity is Complexity.SIMPLE
    assert medium.complexity is Complexity.MODERATE
    assert long.complexity is Complexity.COMPLEX


def test_prior_turns_raise_tier() -> None:
    alone = classify("What is a mutex?")
    follow_up = classify(
        conversation(
            (Role.USER, "I am reading about threads."),
            (Role.ASSISTANT, "Great, ask me anything."),
            (Role.USER, "What is a mutex?"),
        )
    )

    assert alone.complexity is Complexity.SIMPLE
    assert follow_up.complexity is Complexity.MODERATE
    assert follow_up.features["has_context"] == 1.0


def test_long_system_prompt_raises_tier_but_short_one_does_not() -> None:
    question = "What is a mutex?"
    short_system = classify(conversation((Role.SYSTEM, "Be concise."), (Role.USER, question)))
    long_system = classify(
        conversation((Role.SYSTEM, "You are a tutor. " + FILLER * 30), (Role.USER, question))
    )

    assert short_system.complexity is Complexity.SIMPLE
    assert long_system.complexity is Complexity.MODERATE


def test_context_alone_does_not_make_a_request_expert() -> None:
    result = classify(
        conversation(
            (Role.USER, "Hello"),
            (Role.ASSISTANT, "Hi"),
            (Role.USER, "Analyze the architecture of this service in depth."),
        )
    )

    assert result.complexity is Complexity.COMPLEX


def test_code_block_raises_score_and_makes_task_code() -> None:
    plain = classify("Why does this fail with a division error?")
    with_code = classify(
        "Why does this fail with a division error?\n```python\ntotal = 10\nprint(total / 0)\n```"
    )

    assert with_code.task_type is TaskType.CODE
    assert with_code.features["code_blocks"] == 1.0
    assert with_code.score > plain.score


def test_code_inside_fences_is_not_read_as_vocabulary() -> None:
    result = classify("Rename this:\n```rust\n#[derive(Debug)]\nstruct Proof { id: u32 }\n```")

    assert result.features["tier_matches_expert"] == 0.0
    assert result.complexity is Complexity.MODERATE


def test_inline_code_raises_score() -> None:
    plain = classify("Rename the counter variable please.")
    inline = classify("Rename the `counter` variable please.")

    assert inline.features["inline_code"] == 1.0
    assert inline.score > plain.score


def test_multi_step_instructions_raise_score_and_tier() -> None:
    single = classify("Install the package.")
    steps = classify(
        "First install the package, then configure the proxy and then restart the daemon."
    )
    numbered = classify("Do this:\n1. install the package\n2. configure it\n3. restart it")

    assert single.complexity is Complexity.SIMPLE
    assert steps.features["multi_step_markers"] >= 2.0
    assert numbered.features["multi_step_markers"] == 3.0
    assert steps.complexity is numbered.complexity is Complexity.MODERATE
    assert steps.score > single.score


DIVERSE_REQUESTS: list[str | RoutingRequest] = [
    "",
    "hi",
    "What is 2 + 2?",
    "Explain how DNS resolution works.",
    "Compare Postgres and MySQL for a write-heavy workload.",
    "Analyze the trade-offs between microservices and a monolith in depth.",
    "Prove that there are infinitely many primes, rigorously, from first principles.",
    "Derive the gradient of softmax cross-entropy step by step and then prove it is convex.",
    "Summarize: " + FILLER * 40,
    "Fix this:\n```js\nconst x = y +;\n```\nand then explain the `SyntaxError`.",
    "1. a\n2. b\n3. c\n4. d\n5. e\n" * 10,
    "```\n" + "x = 1\n" * 400 + "```\n" + FILLER * 60,
    "What is a proof? " * 30,
    "Prove the lemma; the proof, its proof sketch, the theorem and each derivation are mine.",
    conversation((Role.USER, "hi"), (Role.ASSISTANT, "hello"), (Role.USER, "thanks!")),
    conversation(
        (Role.SYSTEM, FILLER * 40),
        (Role.USER, "Design a lock-free queue and analyze it in depth."),
    ),
    # Every within-band signal at its cap, still COMPLEX: the score must stay below 0.75.
    conversation(
        (Role.USER, "Here is my service."),
        (Role.ASSISTANT, "Go on."),
        (
            Role.USER,
            "Analyze, evaluate and critique this design step by step, and then refactor "
            "`a`, `b`, `c` and `d`, after that test it, finally explain it.\n"
            "```\nx = 1\n```\n```\ny = 2\n```\n" + FILLER * 40,
        ),
    ),
    conversation(
        (Role.USER, "Let's talk about graphs."),
        (Role.ASSISTANT, "Sure."),
        (Role.USER, "Prove the max-flow min-cut theorem. " + FILLER * 50 + "```py\npass\n```"),
    ),
]


@pytest.mark.parametrize("request_", DIVERSE_REQUESTS)
def test_score_falls_inside_the_band_of_the_tier(request_: str | RoutingRequest) -> None:
    result = classify(request_)

    assert in_band(result), (result.complexity, result.score)
    assert 0.0 <= result.confidence <= 1.0
    assert all(isinstance(value, float) for value in result.features.values())


@pytest.mark.parametrize("request_", DIVERSE_REQUESTS)
def test_same_request_gives_the_same_classification(request_: str | RoutingRequest) -> None:
    classifier = RulesClassifier()

    assert classify(request_, classifier) == classify(request_, classifier)
    assert classify(request_, classifier) == classify(request_, RulesClassifier())


def test_classification_does_not_depend_on_the_hash_seed() -> None:
    # Set and dict iteration order changes with PYTHONHASHSEED; the verdict must not.
    script = (
        "import asyncio, sys\n"
        "from modelrouter import RoutingRequest\n"
        "from modelrouter_rules import RulesClassifier\n"
        "c = RulesClassifier()\n"
        "for p in sys.argv[1:]:\n"
        "    r = asyncio.run(c.classify(RoutingRequest.from_prompt(p)))\n"
        "    print(r.complexity, r.task_type, r.score, r.confidence, sorted(r.features.items()))\n"
    )
    prompts = [p for p in DIVERSE_REQUESTS if isinstance(p, str)]
    path = os.pathsep.join(
        str(Path(module.__file__ or "").parent.parent)
        for module in (modelrouter, modelrouter_rules)
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, *prompts],
            env={**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3", "4")
    }

    assert len(outputs) == 1


def test_empty_prompt_is_simple_chat_with_low_confidence() -> None:
    for request in (
        RoutingRequest.from_prompt(""),
        RoutingRequest.from_prompt("   \n"),
        conversation((Role.SYSTEM, "You are helpful.")),
    ):
        result = classify(request)

        assert result.complexity is Complexity.SIMPLE
        assert result.task_type is TaskType.CHAT
        assert result.confidence <= 0.1


def test_clear_match_is_more_confident_than_conflicting_tiers() -> None:
    clear = classify("Prove the theorem.")
    conflicting = classify("What is a theorem? Prove it.")

    assert clear.complexity is conflicting.complexity is Complexity.EXPERT
    assert clear.confidence > conflicting.confidence


def test_classification_is_attributed_to_rules() -> None:
    assert classify("hello").classifier == "rules"


def test_hookimpl_registers_a_classifier_named_rules() -> None:
    registered: list[Classifier] = []

    modelrouter_rules.register_classifiers(registered.append)

    assert [c.name for c in registered] == ["rules"]
    assert isinstance(registered[0], Classifier)


def test_plugin_manager_collects_the_rules_classifier_through_the_hook() -> None:
    manager = pluggy.PluginManager("modelrouter")
    manager.add_hookspecs(modelrouter.hookspecs)
    manager.register(modelrouter_rules)
    manager.check_pending()
    registered: list[Classifier] = []

    manager.hook.register_classifiers(
        register=registered.append, context=modelrouter.PluginContext()
    )

    assert [c.name for c in registered] == ["rules"]


async def test_a_huge_prompt_is_read_through_a_window_with_its_length_scaled():
    from modelrouter_rules import WINDOW_CHARS, RulesClassifier

    sentence = "Explain step by step why the quick brown fox jumps over the lazy dog. "
    prompt = sentence * (4_000_000 // len(sentence))
    assert len(prompt) > 100 * WINDOW_CHARS
    result = await RulesClassifier().classify(RoutingRequest.from_prompt(prompt))
    true_words = len(prompt.split())
    assert abs(result.features["word_count"] - true_words) <= 0.02 * true_words
    assert result.complexity >= Complexity.COMPLEX  # long and multi-step, as in full
