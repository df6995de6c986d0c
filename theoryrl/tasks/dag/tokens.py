"""DAG-lite word-level vocabulary: fixed token ids shared by the generator, the verifier and the models.

Spec `dag_arithmetic.md` §11.2 (Zhang, Neubig and Yue, arXiv 2512.07783). Layout, all ids static so
jitted code never consults a Vocab:
- 0, 1, 2: PAD, BOS, EOS (the `tasks/vocab.py` convention);
- 3..11: the keywords `<sep> = + - * . ; ? answer`;
- 12..50: three contexts (surface templates) of 13 noun tokens each: 6 places, 6 items, 1 category
  noun. A quantity's name is two tokens, `<item> <place>` ("bear forest" = the number of bears in the
  forest) or `<category> <place>` ("animals forest" = the total of the forest's animals, the implicit
  aggregation node). The three blocks are disjoint and parallel: local noun i of context A plays the
  role of local noun i of context B, so a problem rendered in two contexts has the same graph;
- 51..51+p-1: the residues 0..p-1, one token each (last, so the noun ids do not depend on p).

No variable letters (spec §11.2 lists them): the solution names each quantity by its two noun tokens
directly. Letters would add a lookup per reference (name -> letter -> value) without removing one,
and the name itself is what process verification matches on (§5.2).
"""
from __future__ import annotations

import functools

import numpy as np

from theoryrl.tasks.vocab import Vocab

KEYWORDS = ("<sep>", "=", "+", "-", "*", ".", ";", "?", "answer")
SEP, EQ, PLUS, MINUS, TIMES, DOT, SEMI, QUERY, ANSWER = range(3, 3 + len(KEYWORDS))
NUM_PLACES, NUM_ITEMS = 6, 6
CATEGORY = NUM_ITEMS  # local noun index of the category noun (items are 0..5)
NUM_NOUNS = NUM_ITEMS + 1
NUM_NAMES = NUM_NOUNS * NUM_PLACES  # local name id = noun * NUM_PLACES + place (42)
CONTEXT_WORDS = (  # (places, items, category): disjoint across contexts, same roles
    (("forest", "valley", "riverside", "ridge", "creek", "circus"),
     ("bear", "wolf", "deer", "fox", "racoon", "eagle"), "animals"),
    (("evervale", "hawkesbury", "glenfield", "westhaven", "brightford", "riverton"),
     ("elementary", "middle", "highschool", "medical", "culinary", "private"), "schools"),
    (("taylor", "verdi", "sahara", "northwood", "banana", "cannes"),
     ("comedy", "drama", "scifi", "roadmovie", "thriller", "musical"), "movies"),
)
CONTEXT_NAMES = ("zoo", "school", "movie")
NUM_CONTEXTS = len(CONTEXT_WORDS)
NOUN0 = 3 + len(KEYWORDS)  # first place token of context 0
CONTEXT_WIDTH = NUM_PLACES + NUM_NOUNS
NUM0 = NOUN0 + NUM_CONTEXTS * CONTEXT_WIDTH  # token of residue 0


def place_token(context, place):
    return NOUN0 + context * CONTEXT_WIDTH + place


def noun_token(context, noun):
    """Token of local noun `noun` (an item 0..5, or CATEGORY) of a context."""
    return NOUN0 + context * CONTEXT_WIDTH + NUM_PLACES + noun


def num_token(value):
    return NUM0 + value


def vocab_size(p: int) -> int:
    return NUM0 + p


@functools.lru_cache(maxsize=None)
def vocab(p: int) -> Vocab:
    nouns = []
    for places, items, category in CONTEXT_WORDS:
        nouns += list(places) + list(items) + [category]
    return Vocab(KEYWORDS + tuple(nouns) + tuple(str(v) for v in range(p)))


def render(p: int, tokens) -> str:
    """Text of a 1-D token sequence (PAD dropped), or one line per row of a 2-D one."""
    arr = np.asarray(tokens)
    if arr.ndim == 2:
        return "\n".join(vocab(p).decode(row) for row in arr)
    return vocab(p).decode(arr)
