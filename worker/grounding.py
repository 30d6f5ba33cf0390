"""Locate LLM-supplied evidence quotes in an article's ``clean_text``.

The model is asked to return verbatim quotes, but it is never trusted to say
whether a quote is real or where it is.  This module does that verification
itself: for every quote it finds the span of ``clean_text`` the quote came
from and decides ``verified`` from our own comparison.

Matching runs in three stages, cheapest and strictest first:

1. exact substring of ``clean_text``;
2. exact substring after normalising both sides (case-folding, typographic
   quotes/apostrophes/dashes/ellipsis mapped to ASCII, whitespace runs
   collapsed, surrounding whitespace and quote marks of the quote stripped).
   The normalised text carries an offset map, so a match found there is
   translated back to the *real* span of ``clean_text``;
3. fuzzy matching with rapidfuzz (``fuzz.partial_ratio_alignment`` for the
   best window, ``fuzz.ratio`` for the final score) to tolerate the odd typo
   or dropped character, followed by a word-level check (below).  Only
   scores >= ``fuzzy_threshold`` that also pass the word check verify, and
   quotes shorter than ``MIN_FUZZY_CHARS`` normalised characters must match
   exactly, because fuzzy scores of tiny strings verify nonsense.

Word-level check.  A character-level score cannot tell a typo from a
meaning-changing edit: dropping a "not" from a 50-character sentence, or
swapping "new" for "old" or "failure" for "success", still scores about 93-96.
So a fuzzy match verifies only if the quote's words and the located span's
words (after normalisation; punctuation is ignored, numbers keep their sign
and inner separators, scripts written without spaces count one word per
character) align one to one: the same number of words, in order, no word
inserted or deleted, and every pair that differs is a typo of each other --
equal apart from diacritics or apostrophes, or else one letter inserted,
dropped, replaced or two adjacent letters swapped (OSA distance 1), with the
same first letter and, unless it is an adjacent swap ("teh" for "the"),
``fuzz.ratio`` >= 80 and both words longer than three letters.  A pair never
counts as a typo if either word contains a digit ("12" vs "21") or is a
negation or number word ("not"/"now", "cannot"/"cannon", "million"/
"billion"), if the two differ by a word-final "s" or "d" (number or tense:
"plan"/"plans", "approves"/"approved"), or if the quote's word itself occurs
as a word in the article (then it is a real, different word, e.g. "adapt" in
an article that uses both "adapt" and "adopt").  When the word check fails,
the match is reported with ``verified=False`` but with the best span and its
fuzzy ``score`` unchanged.  The check errs on the side of not verifying: two
typos in one word, a missing space between two words, or "wasn't" for
"was not" do not verify either.  Without a dictionary, a real-word swap whose
quote word does not occur in the article ("adapt" for "adopt", "quite" for
"quiet") can still pass.  Stages 1 and 2 accept any substring, including one
that starts or ends inside a word ("employment fell" inside "Unemployment
fell").

Offsets are Python ``str`` indices into ``clean_text`` (code points, not
bytes or UTF-16 units).  ``find_term`` reuses the same normalisation to give
single words/phrases (e.g. loaded-language terms) their offsets.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA

__all__ = ["MIN_FUZZY_CHARS", "Grounder", "QuoteMatch", "find_term", "normalize"]

#: Quotes shorter than this (after normalisation) never verify fuzzily.
MIN_FUZZY_CHARS = 12

# One-to-one replacements, applied after case-folding.  Besides curly quotes and
# dashes this maps a few look-alikes LLMs commonly swap in or out
# (guillemets, hyphen/minus variants, modifier-letter apostrophe).
_ONE_TO_ONE = str.maketrans(
    {
        "\u201c": '"',  # “
        "\u201d": '"',  # ”
        "\u201e": '"',  # „
        "\u201f": '"',  # ‟
        "\u2033": '"',  # ″
        "\u00ab": '"',  # «
        "\u00bb": '"',  # »
        "\u2018": "'",  # ‘
        "\u2019": "'",  # ’
        "\u201a": "'",  # ‚
        "\u201b": "'",  # ‛
        "\u2032": "'",  # ′
        "\u02bc": "'",  # ʼ
        "\u2013": "-",  # –
        "\u2014": "-",  # —
        "\u2012": "-",  # ‒
        "\u2015": "-",  # ―
        "\u2010": "-",  # ‐
        "\u2011": "-",  # non-breaking hyphen
        "\u2212": "-",  # −
    }
)
# Characters whose replacement is not a single character.  Invisible
# characters that web text is littered with are dropped on both sides.
_MULTI: dict[str, str] = {
    "\u2026": "...",  # …
    "\u00ad": "",  # soft hyphen
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # BOM / zero-width no-break space
}
_STRIP_CHARS = " \"'"
_ASCII = frozenset(map(chr, range(128)))

# Fuzzy search tuning (see Grounder._fuzzy).
_GRAM = 6  # character n-gram length used as anchors
_MAX_PROBES = 32  # n-grams of the quote whose frequency in the text we look up
_MAX_ANCHORS = 12  # rarest of those actually used for voting
_MAX_ANCHOR_HITS = 48  # n-grams occurring more often than this are ignored
_MAX_CLUSTERS = 3  # candidate locations scored per quote
_SHORT_NEEDLE = 64  # rapidfuzz's partial_ratio is bit-parallel (fast) up to here
_FALLBACK_MAX_LEN = 512  # longest quote for which we also scan the whole text


@dataclass(frozen=True)
class QuoteMatch:
    start: int  # offset into clean_text of the located span, -1 if not found
    end: int  # exclusive end offset, -1 if not found
    verified: (
        bool  # True only when the span really matches (exact, or fuzzy >= threshold + word check)
    )
    score: float  # 100.0 for exact (after normalisation), fuzzy score otherwise, 0.0 if nothing


_NOT_FOUND = QuoteMatch(-1, -1, False, 0.0)


@lru_cache(maxsize=8)
def _normalise_with_map(text: str) -> tuple[str, list[int]]:
    """Normalise ``text`` and return ``(norm, src)``.

    ``src[k]`` is the index in ``text`` of the character that produced
    ``norm[k]``.  A character expanding to several normalised characters
    (``ß`` -> ``ss``, ``…`` -> ``...``) gives them all the same ``src``; a
    whitespace run becomes one space whose ``src`` is the run's first
    character.  Hence a normalised span ``[a, b)`` corresponds to
    ``text[src[a]:src[b - 1] + 1]``, provided ``a`` is the first and ``b - 1``
    the last character produced by its source character (see ``_is_cut``).

    Implementation: stretches of characters that normalise one-to-one are
    handled in bulk by ``str.casefold``/``str.translate`` (which is per
    character, verified over all code points); a single ``" "`` is such a
    character too, so only the other whitespace runs (line breaks, double
    spaces) and the few characters with multi-character (or empty) normal
    forms present in this text are handled individually -- a few dozen
    matches for an article rather than one per word.  Cached because the
    same article text is normalised by the Grounder and by every
    ``find_term`` call.
    """
    # ASCII characters all fold one-to-one (and str.isascii is O(1))
    special = [
        c
        for c in ("" if text.isascii() else set(text).difference(_ASCII))
        if c in _MULTI or (not c.isspace() and len(c.casefold()) != 1)
    ]
    pattern = r"[^\S ]\s*| \s+"  # a whitespace run, unless it is one " "
    if special:
        pattern += "|[" + "".join(re.escape(c) for c in special) + "]"
    parts: list[str] = []
    src: list[int] = []
    pos = 0
    for m in re.finditer(pattern, text):
        i = m.start()
        if i > pos:
            parts.append(text[pos:i].casefold().translate(_ONE_TO_ONE))
            src.extend(range(pos, i))
        c = m.group()
        if c[0].isspace():
            out = " "
        elif c in _MULTI:
            out = _MULTI[c]
        else:
            out = c.casefold().translate(_ONE_TO_ONE)
            out = "".join(_MULTI.get(ch, ch) for ch in out)
        parts.append(out)
        src.extend([i] * len(out))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:].casefold().translate(_ONE_TO_ONE))
        src.extend(range(pos, len(text)))
    norm = "".join(parts)
    assert len(norm) == len(src)
    return norm, src


def normalize(text: str) -> str:
    """The normalised form quotes are compared in (also strips surrounding
    whitespace and quote marks).  Two strings that normalise equally match."""
    return _normalise_with_map(text)[0].strip(_STRIP_CHARS)


def _is_cut(src: list[int], a: int, b: int) -> bool:
    """True if normalised span [a, b) starts or ends inside the expansion of
    one source character (e.g. the second ``s`` of ``ß``)."""
    return (a > 0 and src[a] == src[a - 1]) or (b < len(src) and src[b] == src[b - 1])


def _find_normalised(norm: str, src: list[int], needle: str, start: int = 0) -> int:
    """``norm.find(needle)`` skipping matches that split a character's expansion."""
    i = norm.find(needle, start)
    while i != -1 and _is_cut(src, i, i + len(needle)):
        i = norm.find(needle, i + 1)
    return i


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def find_term(clean_text: str, term: str) -> tuple[int, int] | None:
    """Offsets ``(start, end)`` of the first occurrence of ``term`` in
    ``clean_text``: case-insensitive, same normalisation as quotes, and on word
    boundaries (``"war"`` does not match inside ``"warning"``).  ``None`` if
    absent or if ``term`` is empty."""
    needle = normalize(term)
    if not needle:
        return None
    norm, src = _normalise_with_map(clean_text)
    check_left = _is_word_char(needle[0])
    check_right = _is_word_char(needle[-1])
    i = _find_normalised(norm, src, needle)
    while i != -1:
        j = i + len(needle)
        left_ok = not check_left or i == 0 or not _is_word_char(norm[i - 1])
        right_ok = not check_right or j == len(norm) or not _is_word_char(norm[j])
        if left_ok and right_ok:
            return src[i], src[j - 1] + 1
        i = _find_normalised(norm, src, needle, i + 1)
    return None


# --- word-level check of fuzzy matches (see the module docstring) -------------

# Scripts written without spaces between words: every character is a word.
_NOSPACE = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029"  # CJK radicals, ideographic marks
    "\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff"  # kana, bopomofo
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"  # ideographs, half-width kana
    "\U00020000-\U0003134f"  # ideographs, supplementary planes
)
_CHUNK_RE = re.compile(f"[{_NOSPACE}]|[^\\s{_NOSPACE}]+")
# Punctuation that may surround an otherwise alphanumeric chunk (fast path).
_EDGE_PUNCT = "\"'.,;:!?()[]{}"
# Combining diacritics of Latin, Greek and Cyrillic letters; other scripts'
# marks (kana voicing marks, Indic vowel signs, ...) are part of the letter.
_DIACRITICS_RE = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
# Words a one-letter edit of which changes the meaning however similar the
# spelling (folded forms: casefolded, apostrophes removed).
_NEGATIONS = frozenset(
    (
        *("not", "no", "nor", "never", "neither", "none", "nobody", "nothing", "nowhere"),
        *("cannot", "without", "non", "nay", "isnt", "arent", "wasnt", "werent", "dont"),
        *("doesnt", "didnt", "cant", "couldnt", "wouldnt", "shouldnt", "wont", "hasnt"),
        *("havent", "hadnt", "mustnt", "neednt", "mightnt", "shant", "aint", "darent"),
        *("oughtnt", "nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie"),
        *("niemals", "nein", "niet", "geen", "nooit", "ne", "pas", "jamais", "aucun", "aucune"),
        *("rien", "nunca", "nada", "ningun", "ninguno", "ninguna", "nao", "nem", "nenhum"),
        *("nenhuma", "mai", "niente", "nessuno", "nessuna"),
    )
)
_NUMBER_WORDS = frozenset(
    (
        *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
        *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
        *("eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy"),
        *("eighty", "ninety", "hundred", "hundreds", "thousand", "thousands", "million"),
        *("millions", "billion", "billions", "trillion", "trillions", "dozen", "dozens"),
        *("tens", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"),
        *("ninth", "tenth", "eleventh", "twelfth", "twentieth", "hundredth", "thousandth"),
        *("millionth", "half", "halves", "quarter", "quarters", "once", "twice", "thrice"),
        *("single", "double", "triple", "quadruple"),
    )
)
_NO_TYPO_WORDS = _NEGATIONS | _NUMBER_WORDS


def _split_chunk(chunk: str, out: list[str]) -> None:
    """Append the words of one whitespace-free chunk to ``out``.

    Letters, digits and combining marks make words; an apostrophe between
    letters and ``. , : /`` between digits stay inside a word, as does a sign
    in front of a number; other symbols (``%``, ``$``, emoji) are words of
    their own; punctuation separates words and is dropped; invisible format
    characters (ZWJ, ZWNJ) are ignored.
    """
    buf: list[str] = []
    last = len(chunk) - 1
    for i, c in enumerate(chunk):
        kind = unicodedata.category(c)[0]
        if kind in "LNM" or c == "_":
            buf.append(c)
            continue
        if kind == "C":
            continue
        nxt = chunk[i + 1] if i < last else ""
        if buf and nxt:
            if c == "'" and buf[-1].isalpha() and nxt.isalpha():
                buf.append(c)
                continue
            if c in ".,:/" and buf[-1].isdigit() and nxt.isdigit():
                buf.append(c)
                continue
        elif not buf and c in "+-" and nxt.isdigit():
            buf.append(c)
            continue
        if buf:
            out.append("".join(buf))
            buf = []
        if kind == "S":
            out.append(c)
    if buf:
        out.append("".join(buf))


def _words(text: str) -> list[str]:
    """The word sequence of normalised ``text`` compared by the word check."""
    out: list[str] = []
    for m in _CHUNK_RE.finditer(text):
        chunk = m.group()
        if chunk.isalnum():
            out.append(chunk)
            continue
        core = chunk.strip(_EDGE_PUNCT)
        if core.isalnum():  # the common "word," / "(word)" case
            out.append(core)
        elif core:
            _split_chunk(chunk, out)
    return out


def _fold(word: str) -> str:
    """``word`` without apostrophes and Latin/Greek/Cyrillic diacritics."""
    if word.isascii():
        return word.replace("'", "")
    bare = _DIACRITICS_RE.sub("", unicodedata.normalize("NFD", word))
    return unicodedata.normalize("NFC", bare.replace("'", ""))


def _is_inflection(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` (one edit apart) differ by a word-final "s" or
    "d" -- another number or tense ("plan"/"plans", "approves"/"approved"),
    not a typo.  A doubled final letter losing one copy ("reckless" ->
    "reckles") is still a typo."""
    if len(a) == len(b):
        return a[:-1] == b[:-1] and {a[-1], b[-1]} == {"s", "d"}
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return long_[:-1] == short and long_[-1] in "sd" and short[-1:] != long_[-1]


def _is_misspelling(q: str, s: str) -> bool:
    """Whether quote word ``q`` could be a typo of text word ``s`` (``q != s``)
    judged from the two words alone; the caller also checks that ``q`` is not
    a word of the article."""
    fq, fs = _fold(q), _fold(s)
    if fq == fs:
        return True  # only diacritics or apostrophes differ
    if not fq or not fs or fq[0] != fs[0]:
        return False
    if any(c.isdigit() for c in fq) or any(c.isdigit() for c in fs):
        return False
    if fq in _NO_TYPO_WORDS or fs in _NO_TYPO_WORDS:
        return False
    if OSA.distance(fq, fs, score_cutoff=1) > 1:
        return False
    if _is_inflection(fq, fs):
        return False
    if len(fq) == len(fs) and sorted(fq) == sorted(fs):
        return True  # two adjacent letters swapped ("teh", "taht")
    # A replaced, added or dropped letter: in short words that too often
    # gives another word ("new"/"now", "fear"/"hear", "pan"/"plan").
    return min(len(fq), len(fs)) > 3 and fuzz.ratio(fq, fs) >= 80


class Grounder:
    """Locates quotes in one article.  Build once per article, then call
    :meth:`locate` per quote."""

    def __init__(self, clean_text: str, *, fuzzy_threshold: float = 90.0) -> None:
        self.clean_text = clean_text
        self.fuzzy_threshold = float(fuzzy_threshold)
        self._norm, self._src = _normalise_with_map(clean_text)

    # -- public -------------------------------------------------------------

    def locate(self, quote: str) -> QuoteMatch:
        stripped = quote.strip()
        if not stripped:
            return _NOT_FOUND

        # 1. verbatim
        i = self.clean_text.find(stripped)
        if i != -1:
            return QuoteMatch(i, i + len(stripped), True, 100.0)

        # 2. verbatim after normalisation
        needle = normalize(stripped)
        if not needle:
            return _NOT_FOUND
        i = _find_normalised(self._norm, self._src, needle)
        if i != -1:
            start, end = self._to_original(i, i + len(needle))
            return QuoteMatch(start, end, True, 100.0)

        # 3. fuzzy -- only for quotes long enough for a score to mean something
        if len(needle) < MIN_FUZZY_CHARS:
            return _NOT_FOUND
        return self._fuzzy(needle)

    # -- internals ----------------------------------------------------------

    def _to_original(self, a: int, b: int) -> tuple[int, int]:
        src = self._src
        return src[a], src[b - 1] + 1

    def _fuzzy(self, needle: str) -> QuoteMatch:
        """Best fuzzy window for ``needle`` in the normalised text.

        Why not simply ``partial_ratio_alignment(needle, whole_text)``?  On a
        long article its cost grows steeply with the quote's length when the
        quote is *not* in the text (docs/benchmarks.md, "Measured by hand")
        -- and invented quotes are exactly what we must handle,
        with a best score still reported.  So the search is narrowed first:
        the rarest character 6-grams of the quote that occur in the text vote
        for where the quote would start (``position in text - position in
        quote``), and only the densest few clusters of votes are scored.
        Character n-grams rather than words keep this script-agnostic (CJK
        has no spaces) and typo-tolerant (a typo spoils only the n-grams that
        overlap it).

        * Short quotes (<= 64 chars): ``partial_ratio_alignment`` on a small
          window around each cluster (rapidfuzz is bit-parallel there).
        * Longer quotes: partial_ratio over a window barely longer than the
          quote is itself slow (it also tries every partial overlap at the
          window edges), so we score the votes'
          start hypotheses directly with ``fuzz.ratio`` -- ratio changes
          smoothly with the window offset, and an intact anchor gives the
          exact offset.
        * Either way ``_refine`` then nudges both ends to the best ratio.

        Safety net: unless the anchors found a perfect window, quotes of
        <= 512 chars are also scanned over the whole text with
        ``score_cutoff`` = max(threshold, best score so far - 2) -- rapidfuzz
        prunes hard with a cutoff, so the scan stays cheap -- so a verifiable
        match the anchors overlooked (a short quote with several typos, or
        the right one of several similar passages) is still found.  Longer
        quotes that could score >= 90 keep plenty of intact anchors.
        """
        norm = self._norm
        n_len = len(needle)
        threshold = self.fuzzy_threshold
        # Raw (unrefined) candidate windows; only the best one gets refined.
        cands: list[tuple[float, int, int]] = []
        for cluster in self._anchor_clusters(needle):
            if n_len <= _SHORT_NEEDLE:
                r0 = max(0, min(d for d, _, _ in cluster) - 16)
                r1 = min(len(norm), max(d for d, _, _ in cluster) + n_len + 16)
                res = fuzz.partial_ratio_alignment(needle, norm[r0:r1])
                if res is not None and res.score > 0:
                    cands.append((res.score, r0 + res.dest_start, r0 + res.dest_end))
            else:
                cands.append(self._best_hypothesis(needle, cluster))
            if cands and cands[-1][0] >= 100.0:
                break

        best: tuple[float, int, int] | None = None
        if cands:
            _, a, b = max(cands, key=lambda c: c[0])
            if a < b:
                best = self._refine(needle, a, b)

        # Safety net (see docstring): an exhaustive but cutoff-pruned scan.
        # Its cutoff is the best score so far, so it also replaces a mediocre
        # anchored hit when the anchors picked the wrong one of several
        # similar passages (the typo having destroyed the distinguishing
        # n-grams).  Equal scores keep the earlier span.
        if n_len <= _FALLBACK_MAX_LEN and (best is None or best[0] < 100.0):
            cutoff = threshold if best is None else max(threshold, best[0] - 2.0)
            res = fuzz.partial_ratio_alignment(needle, norm, score_cutoff=cutoff)
            if res is not None and res.dest_start < res.dest_end:
                cand = self._refine(needle, res.dest_start, res.dest_end)
                if best is None or (cand[0], -cand[1]) > (best[0], -best[1]):
                    best = cand

        if best is None:
            return _NOT_FOUND
        score, a, b = best
        a, b = self._snap(a, b)
        if a >= b:
            return _NOT_FOUND
        start, end = self._to_original(a, b)
        verified = score >= threshold and self._same_words(needle, a, b)
        return QuoteMatch(start, end, verified, score)

    def _same_words(self, needle: str, a: int, b: int) -> bool:
        """The word check (see the module docstring): do the words of
        ``needle`` and of ``norm[a:b]`` align one to one, every differing pair
        being a typo?  With no insertions or deletions allowed, a one-to-one
        alignment of two equally long sequences is the positional one."""
        q_words = _words(needle)
        s_words = _words(self._norm[a:b])
        if len(q_words) != len(s_words):
            return False
        return all(
            q == s or (_is_misspelling(q, s) and not self._is_article_word(q))
            for q, s in zip(q_words, s_words, strict=True)
        )

    def _is_article_word(self, word: str) -> bool:
        """Whether ``word`` occurs as a whole word in the normalised text."""
        norm = self._norm
        # A pattern starting with a literal is scanned for fast; the left
        # boundary is checked here (a lookbehind would slow the scan down).
        for m in re.finditer(re.escape(word) + r"(?!\w)", norm):
            i = m.start()
            if i == 0 or not _is_word_char(norm[i - 1]):
                return True
        return False

    def _anchor_clusters(self, needle: str) -> list[list[tuple[int, int, int]]]:
        """Clusters of ``(offset, pos_in_quote, pos_in_text)`` votes, best first."""
        norm = self._norm
        n_len = len(needle)
        gram = min(_GRAM, n_len)
        last = n_len - gram
        if last + 1 <= _MAX_PROBES:
            probes: list[int] = list(range(last + 1))
        else:
            step = last / (_MAX_PROBES - 1)
            probes = sorted({round(i * step) for i in range(_MAX_PROBES)})

        counted: list[tuple[int, int, str]] = []
        seen: set[str] = set()
        for k in probes:
            g = needle[k : k + gram]
            if g not in seen:
                seen.add(g)
                c = norm.count(g)
                if c:
                    counted.append((c, k, g))
        if not counted:
            return []
        counted.sort()
        anchors = [t for t in counted[:_MAX_ANCHORS] if t[0] <= _MAX_ANCHOR_HITS] or counted[:1]

        # Each occurrence at p of an n-gram found at k in the quote votes, with
        # weight 1/frequency, for "the quote starts at p - k".
        votes: list[tuple[int, float, int, int]] = []
        for c, k, g in anchors:
            w = 1.0 / c
            p = norm.find(g)
            while p != -1:
                votes.append((p - k, w, k, p))
                p = norm.find(g, p + 1)
        votes.sort()

        # Greedily take the heaviest runs of offsets within `width` of each
        # other (insertions/deletions in the quote spread the offsets a bit).
        width = max(8, n_len // 10)
        clusters: list[list[tuple[int, int, int]]] = []
        while votes and len(clusters) < _MAX_CLUSTERS:
            best_w, best_i, best_j = 0.0, 0, 0
            j, acc = 0, 0.0
            for i in range(len(votes)):
                while j < len(votes) and votes[j][0] - votes[i][0] <= width:
                    acc += votes[j][1]
                    j += 1
                if acc > best_w:
                    best_w, best_i, best_j = acc, i, j
                acc -= votes[i][1]
            clusters.append([(d, k, p) for d, _, k, p in votes[best_i:best_j]])
            del votes[best_i:best_j]
        return clusters

    def _best_hypothesis(
        self, needle: str, cluster: list[tuple[int, int, int]]
    ) -> tuple[float, int, int]:
        """For long quotes: the window suggested by a cluster's votes that has
        the best ``fuzz.ratio`` with the quote."""
        n = len(self._norm)
        n_len = len(needle)
        first = min(cluster, key=lambda v: v[1])  # anchor nearest the quote's start
        final = max(cluster, key=lambda v: v[1])  # ... and its end
        windows = {(first[0], first[0] + n_len), (first[0], final[2] + n_len - final[1])}
        windows.update((d, d + n_len) for d, _, _ in cluster[:16])
        best = (-1.0, 0, 0)
        for a, b in sorted(windows):
            a, b = max(0, a), min(n, b)
            if a < b:
                score = fuzz.ratio(needle, self._norm[a:b], score_cutoff=best[0])
                if score > best[0]:
                    best = (score, a, b)
        return best

    def _refine(self, needle: str, a: int, b: int) -> tuple[float, int, int]:
        """Nudge the window ends to maximise ``fuzz.ratio`` with the quote.

        partial_ratio only tries windows exactly as long as the quote, so a
        quote with a dropped or extra character gets a window one character
        off at one end.  Coordinate search over a few characters at each end
        fixes that, preferring word boundaries on ties; the resulting ratio is
        the score we report (never below the partial_ratio score, and unlike
        partial_ratio it penalises quote text running past either end of the
        article).
        """
        norm = self._norm
        n = len(norm)
        slack = min(16, max(3, len(needle) // 20))

        def boundary(i: int) -> int:
            return int(
                i == 0 or i == n or not (_is_word_char(norm[i - 1]) and _is_word_char(norm[i]))
            )

        best_score = fuzz.ratio(needle, norm[a:b])
        best_key = (best_score, boundary(a) + boundary(b))
        for _ in range(2):
            moved = False
            for e in range(max(a + 1, b - slack), min(n, b + slack) + 1):
                score = fuzz.ratio(needle, norm[a:e], score_cutoff=best_score)
                key = (score, boundary(a) + boundary(e))
                if key > best_key:
                    best_key, best_score, b, moved = key, score, e, True
            for s in range(max(0, a - slack), min(b - 1, a + slack) + 1):
                score = fuzz.ratio(needle, norm[s:b], score_cutoff=best_score)
                key = (score, boundary(s) + boundary(b))
                if key > best_key:
                    best_key, best_score, a, moved = key, score, s, True
            if not moved:
                break

        # Prefer whole words: move an end that cuts a word to the nearest word
        # boundary within 3 chars if that costs at most about one edit (e.g. a
        # quote ending in the typo "necessariyl" should cover "necessarily",
        # not "necessaril"), and never at the price of losing verification.
        tolerance = 150.0 / (len(needle) + b - a)
        for side in (0, 1):
            pos = (a, b)[side]
            if boundary(pos):
                continue
            for shift in (-1, 1, -2, 2, -3, 3):
                s, e = (pos + shift, b) if side == 0 else (a, pos + shift)
                if not (0 <= s < e <= n) or not boundary((s, e)[side]):
                    continue
                score = fuzz.ratio(needle, norm[s:e])
                if score >= best_score - tolerance and (
                    score >= self.fuzzy_threshold or best_score < self.fuzzy_threshold
                ):
                    a, b, best_score = s, e, score
                    break
        return best_score, a, b

    def _snap(self, a: int, b: int) -> tuple[int, int]:
        """Trim spaces off a normalised window and widen it to whole source
        characters, so it maps back to a clean span of clean_text."""
        norm, src = self._norm, self._src
        while a < b and norm[a] == " ":
            a += 1
        while b > a and norm[b - 1] == " ":
            b -= 1
        while 0 < a < b and src[a] == src[a - 1]:
            a -= 1
        while a < b < len(src) and src[b] == src[b - 1]:
            b += 1
        return a, b
