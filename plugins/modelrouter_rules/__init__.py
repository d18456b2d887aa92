"""The built-in ``rules`` classifier: word-bounded regexes plus a few structural signals.

It is registered like any third-party plugin (entry point ``rules = "modelrouter_rules"`` in
the ``modelrouter`` group) and costs microseconds per request, so it is the default.

How a request is scored (all on the last user turn, lowercased, with code spans removed
before vocabulary matching so identifiers like ``derive`` or ``proof_id`` do not count):

1. Tier from vocabulary: the most demanding tier with any match in ``TIER_PATTERNS``
   (SIMPLE when nothing matches). Tiers are compared by value, never by table order.
2. Floors from structure: >= 60 words lifts to MODERATE, >= 200 words to COMPLEX; a fenced
   code block lifts to MODERATE, as do >= 2 multi-step markers, and both together to COMPLEX.
3. Context: prior turns, or a system prompt over 200 words, raise the tier one step, but
   not past COMPLEX on its own (a long conversation is not by itself expert work).
4. Score: the tier fixes the band (``TIER_BANDS``: quarters of [0, 1]); a weighted mix of
   length, code, multi-step markers, context and the winning tier's match count places the
   score inside it, so ``score`` and ``complexity`` never disagree.
5. Task type: most pattern matches wins (code blocks count double, inline code once); ties
   go to ``TASK_PRIORITY``; CHAT when nothing matches.

Confidence starts at 0.4, gains for a tier match (+0.3) and a task match (+0.2), and loses
0.1 per tier of spread between matched tiers and 0.1 for a task tie. A prompt that matches
nothing gets 0.25, an empty prompt 0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from modelrouter import (
    Classification,
    Classifier,
    Complexity,
    RoutingRequest,
    TaskType,
    hookimpl,
)

from .patterns import TASK_PATTERNS, TASK_PRIORITY, TIER_PATTERNS

__all__ = ["TIER_BANDS", "RulesClassifier", "register_classifiers"]

_BAND_WIDTH = 0.25
#: Score band per tier: [low, high). EXPERT's band is closed at 1.0.
TIER_BANDS: Mapping[Complexity, tuple[float, float]] = {
    tier: ((tier - 1) * _BAND_WIDTH, tier * _BAND_WIDTH) for tier in Complexity
}
# The within-band position is scaled by this so a maxed-out SIMPLE prompt stays below 0.25
# instead of landing on MODERATE's floor.
_BAND_FILL = 0.99

_MODERATE_WORDS = 60
_COMPLEX_WORDS = 200
_LONG_SYSTEM_PROMPT_WORDS = 200
_MULTI_STEP_MIN = 2

# Weights of the within-band position; they sum to 1 so the position stays in [0, 1].
_W_LENGTH, _W_CODE, _W_STEPS, _W_CONTEXT, _W_STRENGTH = 0.3, 0.2, 0.2, 0.1, 0.2
_LENGTH_SCALE = 300.0  # words at which length stops adding to the position
_STEPS_SCALE = 4.0
_CODE_SCALE = 2.0
_STRENGTH_SCALE = 3.0

_EMPTY_CONFIDENCE = 0.1
_DEFAULT_CONFIDENCE = 0.25

# An unclosed fence runs to the end: the user pasted code and forgot the closing ```.
_FENCED = re.compile(r"```[\s\S]*?(?:```|\Z)")
_INLINE = re.compile(r"`[^`\n]+`")
# "first ... then" is bounded to 200 characters so one early "first" cannot pair with a
# "then" pages later, and so the scan stays linear.
_MULTI_STEP = re.compile(
    r"\b(?:step[- ]by[- ]step|and then|after that|afterwards|finally|step \d+"
    r"|first\b[\s\S]{0,200}?\bthen)\b"
)
_NUMBERED_LINE = re.compile(r"^[ \t]*\d{1,2}[.)][ \t]+\S", re.MULTILINE)


def _alternation(fragments: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(fragments) + r")\b")


class RulesClassifier(Classifier):
    """Classifies by regex vocabulary and prompt structure; no I/O, no model.

    ``tier_patterns`` and ``task_patterns`` default to the tables in
    ``modelrouter_rules.patterns``; the result does not depend on their key order.
    """

    name = "rules"

    def __init__(
        self,
        tier_patterns: Mapping[Complexity, Sequence[str]] = TIER_PATTERNS,
        task_patterns: Mapping[TaskType, Sequence[str]] = TASK_PATTERNS,
    ) -> None:
        # Compiled here once; classify() only runs the compiled patterns.
        self._tiers = tuple(
            (tier, _alternation(tier_patterns[tier])) for tier in sorted(tier_patterns)
        )
        self._tasks = tuple(
            (task, _alternation(task_patterns[task]))
            for task in TASK_PRIORITY
            if task in task_patterns
        )

    async def classify(self, request: RoutingRequest) -> Classification:
        # Pure CPU work of a few microseconds: cheaper inline than a thread hop.
        return self.classify_sync(request)

    def classify_sync(self, request: RoutingRequest) -> Classification:
        """Synchronous :meth:`classify`, for callers outside an event loop."""
        prompt = request.prompt
        system_words = len(request.system_prompt.split())
        prior_turns = request.prior_turns
        has_context = prior_turns > 0 or system_words > _LONG_SYSTEM_PROMPT_WORDS
        features: dict[str, float] = {
            "system_word_count": float(system_words),
            "prior_turns": float(prior_turns),
            "has_context": float(has_context),
        }
        if not prompt.strip():
            features["word_count"] = 0.0
            return Classification(
                Complexity.SIMPLE,
                TaskType.CHAT,
                score=0.0,
                confidence=_EMPTY_CONFIDENCE,
                classifier=self.name,
                features=features,
            )

        words = len(prompt.split())
        prose, code_blocks = _FENCED.subn(" ", prompt.lower())
        prose, inline_code = _INLINE.subn(" ", prose)
        steps = len(_MULTI_STEP.findall(prose)) + len(_NUMBERED_LINE.findall(prose))
        tier_hits = [(tier, len(pattern.findall(prose))) for tier, pattern in self._tiers]
        task_hits = [(task, len(pattern.findall(prose))) for task, pattern in self._tasks]
        # Code itself is the strongest CODE signal, and it was stripped from the prose above.
        task_hits = [
            (task, n + 2 * code_blocks + inline_code if task is TaskType.CODE else n)
            for task, n in task_hits
        ]

        matched = [tier for tier, n in tier_hits if n]
        pattern_tier = max(matched, default=Complexity.SIMPLE)
        length_floor = 1 + (words >= _MODERATE_WORDS) + (words >= _COMPLEX_WORDS)
        structure_floor = 1 + (code_blocks > 0) + (steps >= _MULTI_STEP_MIN)
        level = max(int(pattern_tier), length_floor, structure_floor)
        if has_context and level < Complexity.COMPLEX:
            level += 1
        tier = Complexity(level)

        strength = dict(tier_hits).get(tier, 0)
        position = (
            _W_LENGTH * min(words / _LENGTH_SCALE, 1.0)
            + _W_CODE * min((code_blocks + 0.5 * inline_code) / _CODE_SCALE, 1.0)
            + _W_STEPS * min(steps / _STEPS_SCALE, 1.0)
            + _W_CONTEXT * has_context
            + _W_STRENGTH * min(strength / _STRENGTH_SCALE, 1.0)
        )
        low, _high = TIER_BANDS[tier]
        score = low + _BAND_WIDTH * _BAND_FILL * position

        # self._tasks is in priority order and max() keeps the first of equal keys, so a tie
        # goes to the higher-priority type.
        task, top = max(task_hits, key=lambda item: item[1], default=(TaskType.CHAT, 0))
        if top == 0:
            task = TaskType.CHAT
        task_tie = top > 0 and sum(n == top for _, n in task_hits) > 1

        if not matched and top == 0:
            confidence = _DEFAULT_CONFIDENCE
        else:
            spread = (max(matched) - min(matched)) if matched else 0
            confidence = 0.4 + 0.3 * bool(matched) + 0.2 * (top > 0)
            confidence -= 0.1 * spread + 0.1 * task_tie
            confidence = min(max(confidence, 0.05), 0.95)

        features.update(
            word_count=float(words),
            code_blocks=float(code_blocks),
            inline_code=float(inline_code),
            multi_step_markers=float(steps),
            pattern_tier=float(pattern_tier),
            length_floor=float(length_floor),
            structure_floor=float(structure_floor),
        )
        features.update((f"tier_matches_{t.name.lower()}", float(n)) for t, n in tier_hits)
        features.update((f"task_matches_{t.name.lower()}", float(n)) for t, n in task_hits)
        return Classification(
            tier,
            task,
            score=score,
            confidence=confidence,
            classifier=self.name,
            features=features,
        )


@hookimpl
def register_classifiers(register: Callable[[Classifier], None]) -> None:
    register(RulesClassifier())
