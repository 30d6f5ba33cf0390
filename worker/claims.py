"""Claims compared by their content words: the same claim in other words, for merging a model's
duplicate points (worker/refine.py) and for scoring against the gold set (worker/evaluation.py).

rapidfuzz's token-set ratio over content-word stems, with stop words, frames ("The author argues
that ...") and speaker labels ("Name: ...") removed; validated on the hand-labelled pairs in
testkit/fixtures/gold/matcher_pairs.json (docs/quality.md gives its accuracy).
"""

import re
from functools import lru_cache

from rapidfuzz import fuzz

#: Two claims are the same when their similarity (0-100, below) reaches this. Chosen on the
#: hand-labelled pairs in testkit/fixtures/gold/matcher_pairs.json (see docs/quality.md).
SAME_CLAIM_THRESHOLD = 70.0

# Words that carry no claim of their own, in the languages of the gold set. Short on purpose:
# the matcher only needs the content words to dominate.
_STOP = frozenset(
    """
    a an the and or but if of to in on at by for with from as is are was were be been being it
    its this that these those there their they them he she his her we our you your i my me not
    no so than then too very can could would should will shall may might must do does did has
    have had also just only about into over after before up out more most some any all both
    each such own same other which who whom whose what when where why how while because since
    der die das den dem des ein eine einer eines einem und oder aber nicht ist sind war auch
    mit von zu im in am an auf für dass es sie er wir ich sich noch nur wie als so bei aus el
    la los las un una unos unas y o pero no es son fue de del al en con por para que se su sus
    lo le les como más muy ya
    """.split()  # noqa: SIM905 - a word list reads better as text
)
# "The author argues that ...", "Der Autor schreibt: ...", "El autor sostiene que ...": frames
# our providers put around an article's sentence; they say who holds a claim, not what it is.
_FRAME_RE = re.compile(
    r"^\s*(?:the (?:author|article|columnist|writer)|der autor|die autorin|el autor|la autora"
    r"|l'auteur|according to the (?:author|article))\b[^:,]{0,40}?"
    r"(?:\bthat\b|\bdass\b|\bque\b|:|,)\s*",
    re.IGNORECASE,
)
_SPEAKER_LABEL_RE = re.compile(r"^\s*[^\W\d_][\w.'’ -]{0,40}:\s+")
WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_STEM = (
    6  # content words compared by their first six letters: "fares"/"fare", "postponing"/"postpone"
)


@lru_cache(maxsize=4096)
def claim_tokens(text: str) -> tuple[str, ...]:
    """The content words of a claim, lower-cased and cut to their stem, frames and labels removed.
    Cached: the refine stage compares each claim and quote with many others."""
    text = _FRAME_RE.sub("", _SPEAKER_LABEL_RE.sub("", text, count=1), count=1)
    words = WORD_RE.findall(text.lower().replace("’", "'"))
    return tuple(w[:_STEM] for w in words if w not in _STOP)


def claim_similarity(a: str, b: str) -> float:
    """rapidfuzz's token-set ratio (0-100) over the two claims' content-word stems.

    The token-set ratio is 100 when one claim's words are all in the other's, which is what we
    want when an extractive provider returns the whole sentence a short reference claim comes
    from; stems and stop-word removal keep inflection and function words from deciding.
    """
    ta, tb = claim_tokens(a), claim_tokens(b)
    if not ta or not tb:
        return 0.0
    return float(fuzz.token_set_ratio(" ".join(ta), " ".join(tb)))


def same_claim(a: str, b: str, threshold: float = SAME_CLAIM_THRESHOLD) -> bool:
    return claim_similarity(a, b) >= threshold


def match_claims(predicted: list[str], reference: list[str]) -> list[tuple[int, int]]:
    """One-to-one (predicted index, reference index) pairs of the same claim, best pairs first."""
    scored = sorted(
        (
            (claim_similarity(p, r), i, j)
            for i, p in enumerate(predicted)
            for j, r in enumerate(reference)
        ),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_p: set[int] = set()
    used_r: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for score, i, j in scored:
        if score < SAME_CLAIM_THRESHOLD:
            break
        if i in used_p or j in used_r:
            continue
        used_p.add(i)
        used_r.add(j)
        pairs.append((i, j))
    return pairs
