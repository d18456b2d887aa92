"""The built-in ``rules`` classifier: whole-word vocabulary plus a few structural signals.

It is registered like any third-party plugin (entry point ``rules = "modelrouter_rules"`` in
the ``modelrouter`` group) and costs microseconds per request, so it is the default.

How a request is scored (all on the last user turn; code spans are removed before the
vocabulary is matched, so identifiers like ``derive`` or ``Proof`` do not count):

1. Tier from vocabulary: the most demanding tier with any match in ``TIER_PATTERNS``
   (SIMPLE when nothing matches). Tiers are compared by value, never by table order.
2. Floors from structure: >= 60 words lifts to MODERATE, >= 200 words to COMPLEX; a fenced
   code block lifts to MODERATE, as do >= 2 multi-step markers, and both together to COMPLEX.
3. Context: prior turns, or a system prompt over 200 words, raise the tier one step, but
   not past COMPLEX on its own (a long conversation is not by itself expert work).
4. Score: the tier fixes the band (``TIER_BANDS``: quarters of [0, 1]); a weighted mix of
   length, code, multi-step markers, context and the winning tier's match count places the
   score inside it, so ``score`` and ``complexity`` never disagree.
5. Task type: most vocabulary matches wins (a code block counts two, inline code one); ties
   go to ``TASK_PRIORITY``; CHAT when nothing matches.

Confidence starts at 0.4, gains for a tier match (+0.3) and a task match (+0.2), and loses
0.1 per tier of spread between matched tiers and 0.1 for a task tie. A prompt that matches
nothing gets 0.25, an empty prompt 0.1.

Matching is by whole words: the prose is lowercased, punctuation becomes space, and each
phrase is counted as a space-delimited needle in the rejoined words. That keeps "what is"
out of "somewhat isolated" and costs one pass in C instead of one regex scan per category
(word-bounded regex alternations measured ~0.5 us per character here).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import product

from modelrouter import (
    Classification,
    Classifier,
    Complexity,
    RoutingRequest,
    TaskType,
    hookimpl,
)

from .patterns import MULTI_STEP_PHRASES, TASK_PATTERNS, TASK_PRIORITY, TIER_PATTERNS

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

_STEPS_KEY = "multi_step_markers"
# Typographic quotes, guillemets, inverted marks, ellipsis and dashes separate words too.
_UNICODE_PUNCTUATION = "\u2018\u2019\u201c\u201d\u00ab\u00bb\u00bf\u00a1\u2026\u2013\u2014"
# "_" stays a word character, as in regex \w, so proof_id is one word and not "proof".
_SEPARATORS = str.maketrans(
    dict.fromkeys(string.punctuation.replace("_", "") + _UNICODE_PUNCTUATION, " ")
)
# The per-request patterns start with a literal, which lets the regex engine skip ahead with
# a fast substring search instead of trying every position.
# An unclosed fence runs to the end: the user pasted code and forgot the closing ```.
_FENCED = re.compile(r"```[\s\S]*?(?:```|\Z)")
_INLINE = re.compile(r"`[^`\n]+`")
_NUMBERED_LINE = re.compile(r"\n[ \t]*\d{1,2}[.)][ \t]+\S")
# Runs on the rejoined words; bounded to 30 words so an early "first" cannot pair with a
# "then" pages later.
_FIRST_THEN = re.compile(r" first (?: \S+ ){0,30}? then ")
_BRACES = re.compile(r"\{([^{}]*)\}")
_PHRASE = re.compile(r"[a-z0-9_]+(?: [a-z0-9_]+)*")


def _expand(entry: str) -> list[str]:
    """``"explain{,s}"`` -> ``["explain", "explains"]``; braces multiply out."""
    parts = _BRACES.split(entry)
    choices = [part.split(",") if i % 2 else [part] for i, part in enumerate(parts)]
    phrases = [" ".join("".join(combo).split()) for combo in product(*choices)]
    for phrase in phrases:
        if not _PHRASE.fullmatch(phrase):
            raise ValueError(
                f"vocabulary entry {entry!r} expands to {phrase!r}; expected lowercase "
                "words of letters, digits or _ separated by spaces"
            )
    return phrases


def _index(groups: Iterable[tuple[str, Sequence[str]]]) -> dict[str, tuple[tuple[str, str], ...]]:
    """Map a gate word to the (needle, counter key) pairs of the phrases that contain it.

    The gate is a phrase's longest word, so common words like "in" rarely trigger a search.
    """
    index: dict[str, set[tuple[str, str]]] = {}
    for key, vocabulary in groups:
        for entry in vocabulary:
            for phrase in _expand(entry):
                words = phrase.split()
                needle = " " + "  ".join(words) + " "
                index.setdefault(max(words, key=len), set()).add((needle, key))
    return {gate: tuple(sorted(pairs)) for gate, pairs in index.items()}


def _key(member: Complexity | TaskType) -> str:
    kind = "tier" if isinstance(member, Complexity) else "task"
    return f"{kind}_matches_{member.name.lower()}"


#: Longest text examined, in characters. A hostile multi-megabyte prompt must not hold the
#: event loop: past this, the head and the tail are read and word counts scaled up.
WINDOW_CHARS = 32_000


def _window(text: str) -> tuple[str, float]:
    """``text`` cut to its head and tail when longer than ``WINDOW_CHARS``, and the factor
    that scales counts over the cut back to the whole."""
    if len(text) <= WINDOW_CHARS:
        return text, 1.0
    half = WINDOW_CHARS // 2
    return text[:half] + "\n" + text[-half:], len(text) / (2 * half)


class RulesClassifier(Classifier):
    """Classifies by whole-word vocabulary and prompt structure; no I/O, no model.

    ``tier_patterns`` and ``task_patterns`` default to the tables in
    ``modelrouter_rules.patterns`` (see there for the phrase syntax); the result does not
    depend on their key order. A malformed entry raises ``ValueError`` here, not per call.
    """

    name = "rules"

    def __init__(
        self,
        tier_patterns: Mapping[Complexity, Sequence[str]] = TIER_PATTERNS,
        task_patterns: Mapping[TaskType, Sequence[str]] = TASK_PATTERNS,
    ) -> None:
        # Fixed orders, whatever order the mappings were built in.
        self._tiers = tuple((tier, _key(tier)) for tier in sorted(tier_patterns))
        self._tasks = tuple((task, _key(task)) for task in TASK_PRIORITY if task in task_patterns)
        self._index = _index(
            [(key, tier_patterns[tier]) for tier, key in self._tiers]
            + [(key, task_patterns[task]) for task, key in self._tasks]
            + [(_STEPS_KEY, MULTI_STEP_PHRASES)]
        )
        self._tier_keys = dict(self._tiers)
        tasks = [task for task, _ in self._tasks]
        self._code_position = tasks.index(TaskType.CODE) if TaskType.CODE in tasks else None
        self._keys = (
            *(key for _, key in self._tiers),
            *(key for _, key in self._tasks),
            _STEPS_KEY,
        )

    def _tier_count(self, counts: dict[str, int], tier: Complexity) -> int:
        """Matches of ``tier``'s vocabulary (0 for a tier without one)."""
        key = self._tier_keys.get(tier)
        return counts[key] if key is not None else 0

    async def classify(self, request: RoutingRequest) -> Classification:
        # Pure CPU work of tens of microseconds: cheaper inline than a thread hop.
        return self.classify_sync(request)

    def classify_sync(self, request: RoutingRequest) -> Classification:
        """Synchronous :meth:`classify`, for callers outside an event loop."""
        prompt, scale = _window(request.prompt)
        system_prompt, system_scale = _window(request.system_prompt)
        system_words = round(len(system_prompt.split()) * system_scale)
        prior_turns = request.prior_turns
        has_context = prior_turns > 0 or system_words > _LONG_SYSTEM_PROMPT_WORDS
        features: dict[str, float] = {
            "system_word_count": float(system_words),
            "prior_turns": float(prior_turns),
            "has_context": float(has_context),
        }
        words = round(len(prompt.split()) * scale)
        features["word_count"] = float(words)
        if not words:
            return Classification(
                Complexity.SIMPLE,
                TaskType.CHAT,
                score=0.0,
                confidence=_EMPTY_CONFIDENCE,
                classifier=self.name,
                features=features,
            )

        prose, code_blocks = _FENCED.subn(" ", prompt)
        prose, inline_code = _INLINE.subn(" ", prose)
        prose = prose.lower()
        numbered = len(_NUMBERED_LINE.findall("\n" + prose))
        tokens = prose.translate(_SEPARATORS).split()
        padded = " " + "  ".join(tokens) + " "
        present = set(tokens)
        counts = dict.fromkeys(self._keys, 0)
        # Summation commutes, so the set's iteration order cannot change the counts.
        for gate in self._index.keys() & present:
            for needle, key in self._index[gate]:
                counts[key] += padded.count(needle)
        steps = counts[_STEPS_KEY] + numbered
        if "first" in present and "then" in present:
            steps += len(_FIRST_THEN.findall(padded))
        # Parallel to self._tasks (priority order).
        task_counts = [counts[key] for _, key in self._tasks]
        if self._code_position is not None:
            # Code itself is the strongest CODE signal, and it was stripped from the prose above.
            task_counts[self._code_position] += 2 * code_blocks + inline_code

        matched = [tier for tier, key in self._tiers if counts[key]]
        pattern_tier = max(matched, default=Complexity.SIMPLE)
        length_floor = 1 + (words >= _MODERATE_WORDS) + (words >= _COMPLEX_WORDS)
        structure_floor = 1 + (code_blocks > 0) + (steps >= _MULTI_STEP_MIN)
        level = max(int(pattern_tier), length_floor, structure_floor)
        if has_context and level < Complexity.COMPLEX:
            level += 1
        tier = Complexity(level)

        position = (
            _W_LENGTH * min(words / _LENGTH_SCALE, 1.0)
            + _W_CODE * min((code_blocks + 0.5 * inline_code) / _CODE_SCALE, 1.0)
            + _W_STEPS * min(steps / _STEPS_SCALE, 1.0)
            + _W_CONTEXT * has_context
            + _W_STRENGTH * min(self._tier_count(counts, tier) / _STRENGTH_SCALE, 1.0)
        )
        score = TIER_BANDS[tier][0] + _BAND_WIDTH * _BAND_FILL * position

        # task_counts is in priority order and index() finds the first of equal counts, so a
        # tie goes to the higher-priority type.
        top = max(task_counts, default=0)
        task = self._tasks[task_counts.index(top)][0] if top > 0 else TaskType.CHAT
        task_tie = top > 0 and task_counts.count(top) > 1

        if not matched and top == 0:
            confidence = _DEFAULT_CONFIDENCE
        else:
            spread = (max(matched) - min(matched)) if matched else 0
            confidence = 0.4 + 0.3 * bool(matched) + 0.2 * (top > 0)
            confidence -= 0.1 * spread + 0.1 * task_tie
            confidence = min(max(confidence, 0.05), 0.95)

        features.update(
            code_blocks=float(code_blocks),
            inline_code=float(inline_code),
            multi_step_markers=float(steps),
            pattern_tier=float(pattern_tier),
            length_floor=float(length_floor),
            structure_floor=float(structure_floor),
        )
        for _, key in self._tiers:
            features[key] = float(counts[key])
        for (_, key), n in zip(self._tasks, task_counts, strict=True):
            features[key] = float(n)
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
