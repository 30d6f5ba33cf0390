"""Token estimates and map-reduce chunking for long articles, with no download.

`estimate_tokens` is a heuristic stand-in for a BPE tokenizer (tiktoken would have to fetch its
encodings at first use, which is impossible offline).  `split_into_chunks` cuts a text into
chunks whose estimate stays within a budget, on the most natural boundaries available,
with a small overlap between consecutive chunks so that no argument is cut off without context.

Chunks are described by offsets into the original string and are never rewritten:
``text[chunk.start:chunk.end] == chunk.text``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["Chunk", "estimate_tokens", "split_into_chunks"]

# --------------------------------------------------------------------------------------------
# Token estimate
# --------------------------------------------------------------------------------------------
#
# The text is cut into the same kinds of pieces that the cl100k_base / o200k_base pre-tokenizer
# produces, and each piece is priced:
#
# * a run of ASCII letters (a Latin word): 1 token up to 6 letters, then one more per 4 letters
#   ((n + 1) // 4, at least 1).  Common English words up to ~10 letters are single tokens in
#   cl100k, rarer ones split into 2-4 pieces; charging "because"/"government" 2-3 tokens
#   makes up for rare short words and names ("tiktoken" is 3 real tokens, 2 here).  A run
#   longer than 20 letters is not a word (a hash, base64, a URL slug) and costs 1 per 3;
# * a letter run with non-ASCII letters is priced per script: Latin with diacritics 1 per 3
#   characters, Cyrillic and Arabic 1 per 2, Chinese/Japanese/Korean 1 per character, every
#   other script 1 per character (Greek, Hebrew, Indic, Thai ... are expensive in cl100k);
# * digits in groups of up to 3, as cl100k and o200k split them, plus 1 for a number after a
#   space (which is a token of its own before a digit in cl100k and o200k);
# * every other non-space character (punctuation, symbols, combining marks, emoji) 1 (rare
#   symbols and emoji can be 2-3 real tokens: an accepted underestimate, so that no single
#   character is ever priced above 1);
# * a space 0 (it is part of the next token), but a double space 1; every other whitespace
#   character (newline, tab) 1, where "\n\n" and "\r\n" count once.  Long runs of spaces are
#   overestimated (cl100k has tokens for long indentation), which is the safe side.
#
# Calibration (no tiktoken offline, so against published reference points and a hand count):
# OpenAI's rule of thumb for English is ~4 characters and ~0.75 words per token; "Hello,
# world!" and "How are you?" are 4 tokens each in cl100k, as here.  The English news
# articles in testkit/fixtures give 4.0-4.1 characters per token here (1.4-1.5 tokens per
# whitespace-separated word: they are dense with names and numbers).  The 43-word lead
# sentence of news_multiple_sides.txt, tokenized by hand with cl100k's pre-tokenizer rules
# (common words whole; "Valdera", "Sorrel", "litres" in two pieces), is ~53 tokens; the
# estimate is 60, i.e. ~13 % over.  Expect about 5-15 % above cl100k on English prose and a
# little more above o200k, whose larger vocabulary is slightly more efficient.  That is the
# intended side: a chunk estimated within budget must not exceed it.  What the heuristic
# cannot see (rare symbols that BPE spells byte by byte, unusual scripts) can still be
# underestimated, so callers should keep a margin below a hard context limit.
#
# Properties the chunker relies on: a single character costs at most 1 token; the estimate
# never decreases when a whitespace-free string grows; and it is additive across whitespace:
# estimate(a + ws + b) == estimate(a) + gap + estimate(b), gap = estimate(ws + b[0]) -
# estimate(b[0]), when ws is the whole run of whitespace between a and b (no letter or digit
# run crosses it, every whitespace price is a function of the run alone, and the gap carries
# the space-before-a-number token).
#
# Speed: three regex passes (two bytes.translate passes for ASCII text) and a few str counts,
# linear in the text (docs/benchmarks.md, "Measured by hand").

_LETTER_RUN = re.compile(r"[^\W\d_]+")
_DIGIT_RUN = re.compile(r"\d+")
_SPACED_NUMBER = re.compile(r" \d")
# The same runs in ASCII text, several times faster: every other byte becomes a space, then
# bytes.split() (ASCII letters and digits are exactly what the regexes match there); and the
# whitespace count by deleting everything else (str.isspace() decides, as for str.split()).
_ASCII_LETTERS = bytes(c if chr(c).isascii() and chr(c).isalpha() else 32 for c in range(256))
_ASCII_DIGITS = bytes(c if chr(c).isascii() and chr(c).isdigit() else 32 for c in range(256))
_ASCII_NON_SPACE = bytes(c for c in range(128) if not chr(c).isspace())

_CJK = (
    "\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_LATIN = "A-Za-z\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff"
_CYRILLIC_ARABIC = "\u0400-\u052f\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff"
_SCRIPT_RUN = re.compile(
    f"(?P<cjk>[{_CJK}]+)|(?P<latin>[{_LATIN}]+)|(?P<half>[{_CYRILLIC_ARABIC}]+)|(?P<other>.)",
    re.DOTALL,
)


def _ascii_word_tokens(n: int) -> int:
    return ((n + 1) // 4 or 1) if n <= 20 else (n + 2) // 3


def _word_tokens(word: str) -> int:
    if word.isascii():
        return _ascii_word_tokens(len(word))
    tokens = 0
    for m in _SCRIPT_RUN.finditer(word):
        kind, n = m.lastgroup, m.end() - m.start()
        if kind == "latin":
            tokens += (n + 2) // 3
        elif kind == "half":
            tokens += (n + 1) // 2
        else:  # cjk: one per character; other: the match is one character
            tokens += n
    return tokens


def estimate_tokens(text: str) -> int:
    """A token estimate that needs no download (tiktoken fetches its encodings at first use,
    which is not possible offline).

    A documented heuristic close to cl100k_base / o200k_base on English prose, erring on the
    high side (about 5-15 % over); see the comment above this function for the rules, their
    calibration and the properties chunking relies on.
    """
    if text.isascii() and text.isalpha():  # fast path for a single word (chunking's units)
        return _ascii_word_tokens(len(text))
    tokens = letter_chars = digit_chars = 0
    if text.isascii():  # O(1) in CPython; the common case, priced by word length only
        data = text.encode("ascii")
        for n, count in Counter(map(len, data.translate(_ASCII_LETTERS).split())).items():
            tokens += _ascii_word_tokens(n) * count
            letter_chars += n * count
        numbers = data.translate(_ASCII_DIGITS).split()
        whitespace = len(data) - len(data.translate(None, _ASCII_NON_SPACE))
    else:
        for word, count in Counter(_LETTER_RUN.findall(text)).items():
            tokens += _word_tokens(word) * count
            letter_chars += len(word) * count
        numbers = _DIGIT_RUN.findall(text)
        whitespace = len(text) - sum(map(len, text.split()))
    for number in numbers:
        tokens += (len(number) + 2) // 3
        digit_chars += len(number)
    tokens += len(_SPACED_NUMBER.findall(text))
    symbols = len(text) - whitespace - letter_chars - digit_chars
    return tokens + symbols + _whitespace_tokens(text, whitespace)


def _whitespace_tokens(text: str, whitespace: int) -> int:
    """The price of the whitespace in `text`, which has `whitespace` whitespace characters."""
    spacing = whitespace - text.count(" ") + text.count("  ")
    return spacing - text.count("\n\n") - text.count("\r\n")


# --------------------------------------------------------------------------------------------
# Chunking
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # offset into the full text
    end: int  # exclusive; text[start:end] is the chunk's text
    text: str


_BREAK = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() breaks on
_NEWLINE = f"(?:\r\n|[{_BREAK}])"
# Separators; group 1 (or 2) is the stretch between two pieces.  A whitespace separator takes
# the whole run of whitespace, so that pieces never start or end with whitespace.
# (?<!\s): only try at the start of a whitespace run (linear time on long runs of spaces).
_BLANK_LINE = re.compile(rf"(?<!\s)(\s*{_NEWLINE}[^\S{_BREAK}]*{_NEWLINE}\s*|\s*\u2029\s*)")
_LINE_BREAK = re.compile(rf"(?<!\s)(\s*[{_BREAK}]\s*)")
# A regex, not sentencex (the splitter the rest of the worker uses): a chunk boundary must fall
# at every sentence end the token estimate can cut at, closing quotes included, and sentencex's
# boundaries (around quotes, abbreviations and numbers) broke the overlap guarantee that
# tests/unit/test_chunking.py's property tests check. A missed abbreviation here only moves a
# chunk boundary, never loses text.
_SENTENCE_END = re.compile(r"[.!?][\"”’)]?(\s+)|[。！？]+[」』”’）)]*(\s*)")
_WHITESPACE = re.compile(r"(\s+)")

# A piece cut from a whitespace-free run is at least 1/64 of the budget, so a chunk holds at
# most ~64 of them: the estimate is not additive inside a run, and each piece added to a chunk
# re-prices the run so far.
_MAX_PIECES_PER_CHUNK = 64


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    cost: int
    level: int  # the next separator level that could split this unit further


def _char_class(ch: str) -> int:
    """0 letter, 1 digit, 2 anything else, as the estimate's letter and digit runs see them."""
    if ch.isdecimal():
        return 1
    if ch.isalnum():
        return 0
    return 2


def _glued(text: str, pos: int) -> bool:
    """Whether an empty boundary at `pos` cuts through a letter or digit run, where the
    estimate is not additive."""
    left, right = _char_class(text[pos - 1]), _char_class(text[pos])
    return left == right and left != 2


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _gap_cost(text: str, end: int, start: int) -> int:
    """What the whitespace text[end:start] between two pieces adds to their estimates (see
    the additivity note above estimate_tokens)."""
    if end == start:
        return 0
    gap = text[end:start]
    return _whitespace_tokens(gap, len(gap)) + (gap[-1] == " " and text[start].isdecimal())


def _split(text: str, start: int, end: int, separator: re.Pattern[str]) -> list[tuple[int, int]]:
    """Non-empty, whitespace-trimmed pieces of text[start:end] between `separator` matches."""
    pieces: list[tuple[int, int]] = []
    pos = start
    for m in separator.finditer(text, start, end):
        a, b = m.span(m.lastindex or 0)
        s, e = _trim(text, pos, a)
        if s < e:
            pieces.append((s, e))
        pos = max(pos, b)
    s, e = _trim(text, pos, end)
    if s < e:
        pieces.append((s, e))
    return pieces


class _Chunker:
    def __init__(self, text: str, max_tokens: int, overlap_tokens: int) -> None:
        self.text = text
        self.max = max_tokens
        self.overlap = overlap_tokens
        self.start, self.end = _trim(text, 0, len(text))
        paragraph = _BLANK_LINE if _BLANK_LINE.search(text, self.start, self.end) else _LINE_BREAK
        # Separator levels, coarse to fine; a unit too large at one level is split at the next,
        # and after whitespace comes a hard split inside the run.
        self.levels = (paragraph, _SENTENCE_END, _LINE_BREAK, _WHITESPACE)
        # A hard-split piece is at most this large; if possible no larger than the overlap, so
        # that even a whitespace-free run gets an overlap.
        self.piece_budget = max(
            1,
            max_tokens // _MAX_PIECES_PER_CHUNK,
            min(overlap_tokens, max_tokens // 4),
        )
        self.units: list[_Unit] = []

    # -- units -------------------------------------------------------------------------------

    def build_units(self) -> None:
        if self.start < self.end:
            self._emit(self.start, self.end, 0)
        units, text = self.units, self.text
        n = len(units)
        # prefix[k]: estimate of text[units[0].start:units[k].end] if nothing is glued;
        # glue[k]: number of glued boundaries up to and including the one before unit k.
        self.gap = [0] * n
        self.prefix = [0] * n
        self.glue = [0] * n
        total = glued = 0
        for k, u in enumerate(units):
            if k:
                prev_end = units[k - 1].end
                if prev_end == u.start:
                    glued += _glued(text, u.start)
                else:
                    self.gap[k] = _gap_cost(text, prev_end, u.start)
                    total += self.gap[k]
            total += u.cost
            self.prefix[k] = total
            self.glue[k] = glued

    def _emit(self, start: int, end: int, level: int) -> None:
        text = self.text
        # Every 8 characters cost at least a token (see the estimate's rules), so a longer span
        # is too large without pricing it.
        if end - start - 1 <= 8 * self.max:
            cost = estimate_tokens(text[start:end])
            if cost <= self.max:
                self.units.append(_Unit(start, end, cost, level))
                return
        for lvl in range(level, len(self.levels)):
            pieces = _split(text, start, end, self.levels[lvl])
            if len(pieces) > 1:
                for s, e in pieces:
                    self._emit(s, e, lvl + 1)
                return
        self._hard_split(start, end)

    def _hard_split(self, start: int, end: int) -> None:
        """Cut a whitespace-free run into pieces of at most `piece_budget` tokens.  The estimate
        grows monotonically with the end of the piece and is at most 1 per character, so a
        binary search finds the longest piece that fits and every piece has a character."""
        text, budget, hard = self.text, self.piece_budget, len(self.levels)
        while start < end:
            # text[start:lo] fits (one character is at most one token); no piece is longer than
            # 6 characters per token (a 6-letter word), which bounds the search.
            lo, hi = start + 1, min(end, start + 6 * budget + 6)
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if estimate_tokens(text[start:mid]) <= budget:
                    lo = mid
                else:
                    hi = mid - 1
            self.units.append(_Unit(start, lo, estimate_tokens(text[start:lo]), hard))
            start = lo

    # -- costs -------------------------------------------------------------------------------

    def cost_to(self, start: int, first: int, first_cost: int, last: int) -> int:
        """Estimate of text[start:units[last].end], where `start` lies in unit `first` and
        first_cost is the estimate of text[start:units[first].end]."""
        if self.glue[last] == self.glue[first]:
            return first_cost + self.prefix[last] - self.prefix[first]
        return estimate_tokens(self.text[start : self.units[last].end])

    def cost_between(self, first: int, last: int) -> int:
        return self.cost_to(self.units[first].start, first, self.units[first].cost, last)

    def cost_with_next(self, start: int, cost: int, last: int) -> int:
        """Estimate of text[start:units[last + 1].end], given the estimate `cost` of
        text[start:units[last].end]."""
        nxt = last + 1
        if self.glue[nxt] == self.glue[last]:
            return cost + self.gap[nxt] + self.units[nxt].cost
        return estimate_tokens(self.text[start : self.units[nxt].end])

    # -- overlap -----------------------------------------------------------------------------

    def overlap_start(self, chunk_start: int, last: int) -> int | None:
        """Where the chunk after one ending with unit `last` starts: at whole trailing units
        of at most `overlap` tokens in all that still leave room for the next unit, or if even
        the last unit is too large, at its trailing sentences (lines, words).  None: no
        overlap."""
        if self.overlap == 0:
            return None
        units, best = self.units, None
        k = last
        while k >= 0 and units[k].start > chunk_start:
            cost = self.cost_between(k, last)
            if cost > self.overlap or self.cost_with_next(units[k].start, cost, last) > self.max:
                break
            best = units[k].start
            k -= 1
        if best is None:
            best = self._overlap_inside(units[last], chunk_start, last)
        return best

    def _overlap_inside(self, unit: _Unit, chunk_start: int, last: int) -> int | None:
        text, start, end, level = self.text, unit.start, unit.end, unit.level
        while True:
            for lvl in range(level, len(self.levels)):
                pieces = _split(text, start, end, self.levels[lvl])
                if len(pieces) > 1:
                    break
            else:
                return None
            best, cost = None, 0
            for i in range(len(pieces) - 1, -1, -1):
                s, e = pieces[i]
                if s <= chunk_start:
                    break
                # Exact: these separators are whole runs of whitespace, or empty after
                # punctuation, where the estimate is additive.
                piece_cost = estimate_tokens(text[s:e])
                if i < len(pieces) - 1:
                    piece_cost += _gap_cost(text, e, pieces[i + 1][0])
                cost += piece_cost
                if cost > self.overlap or self.cost_with_next(s, cost, last) > self.max:
                    break
                best = s
            if best is not None:
                return best
            start, end = pieces[-1]
            level = lvl + 1
            if start <= chunk_start:
                return None

    # -- packing -----------------------------------------------------------------------------

    def chunks(self) -> list[Chunk]:
        self.build_units()
        units, text = self.units, self.text
        if not units:
            return []
        out: list[Chunk] = []
        start, first, first_cost, last = units[0].start, 0, units[0].cost, 0
        n = len(units)
        while True:
            cost = self.cost_to(start, first, first_cost, last)
            while last + 1 < n:
                cost_next = self.cost_with_next(start, cost, last)
                if cost_next > self.max:
                    break
                cost, last = cost_next, last + 1
            end = units[last].end
            out.append(Chunk(len(out), start, end, text[start:end]))
            if last + 1 == n:
                return out
            overlap = self.overlap_start(start, last)
            if overlap is None:
                last += 1
                start, first, first_cost = units[last].start, last, units[last].cost
            else:
                start = overlap
                first = last
                while units[first].start > start:
                    first -= 1
                first_cost = (
                    units[first].cost
                    if units[first].start == start
                    else estimate_tokens(text[start : units[first].end])
                )
                last += 1  # checked to fit together with the overlap


def split_into_chunks(text: str, max_tokens: int, overlap_tokens: int) -> list[Chunk]:
    """Split `text` into chunks of at most `max_tokens` estimated tokens for map-reduce.

    * Paragraphs are separated by blank lines (by single line breaks when the text has no
      blank line).  Whole paragraphs are packed greedily into chunks; a paragraph larger than
      `max_tokens` is split into sentences (after ``.!?`` and an optional closing quote or
      bracket, followed by whitespace; also after ``。！？``), a sentence that is still too
      large at line breaks, then at whitespace, and a whitespace-free run that is still too
      large (a URL, base64, CJK without punctuation) between characters.  Every single
      character is estimated at most 1 token, so every chunk's estimate is <= max_tokens.
    * Consecutive chunks overlap by whole trailing paragraphs (or sentences) of the previous
      chunk totalling at most `overlap_tokens`; if the last paragraph alone is larger, its
      trailing sentences (lines, words) are used, so there is at least one overlapping unit
      whenever one fits in `overlap_tokens` and, together with the new material, in
      `max_tokens`.  Pieces of a hard-split run overlap only if they fit in `overlap_tokens`.
    * Chunks are offsets into the original string, never rewritten: ``text[c.start:c.end] ==
      c.text``; they start and end on non-whitespace, follow the text in order with strictly
      increasing starts and ends, and together cover every non-whitespace character.  A text
      within `max_tokens` is one chunk (without leading/trailing whitespace); empty or
      whitespace-only text gives [].
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens must be an integer >= 1, got {max_tokens!r}")
    if isinstance(overlap_tokens, bool) or not isinstance(overlap_tokens, int):
        raise ValueError(f"overlap_tokens must be an integer, got {overlap_tokens!r}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be >= 0 and < max_tokens ({max_tokens}), got {overlap_tokens}"
        )
    return _Chunker(text, max_tokens, overlap_tokens).chunks()
