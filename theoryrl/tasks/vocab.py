"""A tiny word-level tokenizer shared by the token tasks (pure Python/numpy, never traced).

Ids 0, 1, 2 are always PAD, BOS, EOS; a task's words follow in the order given, so a task can
compute a word's id statically from its position (offset + index) inside jitted code and use this
class on the host to build prompts in tests and to read samples.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (PAD, BOS, EOS)


@dataclasses.dataclass(frozen=True)
class Vocab:
    """`words`: the task's words (no specials, no whitespace, no duplicates); ids start at 3."""

    words: tuple[str, ...]
    _index: dict = dataclasses.field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        words = tuple(self.words)
        object.__setattr__(self, "words", words)
        tokens = SPECIALS + words
        bad = [w for w in words if not isinstance(w, str) or not w or any(ch.isspace() for ch in w)]
        if bad:
            raise ValueError(f"vocabulary words must be non-empty strings without whitespace, got {bad[:5]}")
        if len(set(tokens)) != len(tokens):
            dupes = sorted({w for w in tokens if tokens.count(w) > 1})
            raise ValueError(f"duplicate vocabulary words (specials {SPECIALS} are added automatically): {dupes}")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(tokens)})

    @property
    def tokens(self) -> tuple[str, ...]:
        """All words by id: the specials, then `words`."""
        return SPECIALS + self.words

    @property
    def size(self) -> int:
        return len(SPECIALS) + len(self.words)

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    def id(self, word: str) -> int:
        try:
            return self._index[word]
        except KeyError:
            raise ValueError(f"word {word!r} is not in the vocabulary") from None

    def ids(self, text_or_words: str | Iterable[str]) -> np.ndarray:
        """int32 ids of a whitespace-separated string or of a sequence of words."""
        words = text_or_words.split() if isinstance(text_or_words, str) else list(text_or_words)
        return np.array([self.id(w) for w in words], dtype=np.int32)

    def decode(self, ids, *, skip_pad: bool = True) -> str:
        """Space-joined words of a 1-D id sequence (PAD dropped unless skip_pad=False)."""
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise ValueError(f"decode takes a 1-D id sequence, got shape {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.size):
            raise ValueError(f"ids must lie in [0, {self.size}), got range [{arr.min()}, {arr.max()}]")
        toks = self.tokens
        return " ".join(toks[i] for i in arr.tolist() if not (skip_pad and i == PAD_ID))
