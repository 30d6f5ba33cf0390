"""Loaded language: find it in a source article, and keep it out of our summary.

Two jobs:

* :func:`loaded_terms` lists every occurrence of an emotively loaded word or
  short phrase in a text, with offsets (``text[start:end]`` is the term as it
  appears, case preserved).
* :func:`unattributed_loaded_terms` is the neutrality gate for a summary: the
  loaded terms the summary uses *in its own voice*, i.e. outside quotation
  marks and outside attributed speech ("the author calls the plan a fiasco").

**English only.**  The lexicon, the tokeniser's apostrophe/hyphen rules, the
attribution verbs and the sentence splitter all assume English text.  On other
languages the functions do not fail; they just find (almost) nothing.

The lexicon
-----------
vaderSentiment's ``vader_lexicon.txt`` (~7,500 entries, each rated by ten human
raters from -4 to +4; we use the mean) read straight from the installed
package -- offline, once, cached.  We do not instantiate
``SentimentIntensityAnalyzer``: we only need the word list.

Threshold ``|mean valence| >= 2.0`` (``VALENCE_THRESHOLD``).  Measured on the
lexicon: 2.0 is the lowest cut that keeps "outrageous" (-2.0) and "awful"
(-2.0) -- with "fiasco" -2.3, "shameful" -2.2, "stupid" -2.4, "brilliant" 2.8,
"disaster" -3.1 well inside -- while dropping everyday mild words that a
neutral summary legitimately uses: "good" 1.9, "united" 1.8, "support" 1.7,
"like" 1.5, "agree" 1.5, "problem" -1.7.  That leaves ~2,100 alphabetic
entries (~1,780 after the exclusions below); 1.5 would admit ~4,000, mostly
mild ("help", "like").

VADER rates how positive or negative a *word's meaning* is, which is not the
same as how *loaded* it is, so two curated corrections follow:

* ``_EXCLUDED``: entries above the threshold that are the ordinary, neutral
  way to report a fact ("war", "killed", "died", "cancer", "arrested",
  "crisis", "won", "free", "justice", "supreme", "interest", "hand") -- the
  valence is the event's, not the writer's -- plus internet slang/acronyms
  that collide with ordinary text ("kia", "nfc", "tia", "lol").  Without this
  list every summary of a war or an election would fail the gate.
* ``worker/loaded_terms.txt`` (:func:`curated_terms`): a curated list of the
  vocabulary of political and editorial framing that the lexicon lacks or
  rates below the threshold ("regime", "boondoggle", "phoney", "outplays",
  "charade", "cash grab", "witch hunt", "rigged" -1.5, "reckless" -1.7,
  "naive" -1.1, "fool" -1.9, "propaganda" -1.0).  VADER was built for
  social-media sentiment and misses this vocabulary.  The file's header says
  how it is kept.

A further heuristic: a capitalised (Title-case, not ALL-CAPS) built-in term in
the middle of a sentence is taken to be part of a name and skipped ("Great
Britain", "the Supreme Court", "Justice Department", the town of Paradise).
The cost is that Headline Case text loses its loaded terms; terms passed
explicitly as ``extra_terms`` are never skipped.

Tokenising and matching
-----------------------
One regex pass over the text yields word tokens: runs of word characters
joined by inner hyphens ("short-sighted", "so-called") or apostrophes
("don't", "can't"); a possessive ``'s`` is split off ("regime's" -> "regime").
Each token is looked up in a dict (a set lookup, not one regex per term);
multi-word terms ("witch hunt", "slush fund") are tried only at tokens that
begin one, and must be separated by whitespace only.  A hyphenated token that
is not itself a term is checked part by part ("fiasco-ridden" -> "fiasco"),
except after a negating or reversing prefix ("anti-war", "non-violent").
Overlapping candidates are resolved in favour of the longer span.

Extra terms (e.g. the LLM's own list) are matched the same way, so every
occurrence is found, case-insensitively and on word boundaries.  A term with
other punctuation (e.g. "regime's", "$$$") falls back to
:func:`worker.grounding.find_term`, which yields its first occurrence only.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from worker.grounding import find_term

__all__ = [
    "VALENCE_THRESHOLD",
    "NeutralityIssue",
    "TermScan",
    "TermSpan",
    "attributed_regions",
    "curated_terms",
    "loaded_terms",
    "quoted_regions",
    "unattributed_loaded_terms",
]

#: Minimum |mean valence| (VADER scale -4..+4) for a lexicon entry to count
#: as loaded.  See the module docstring for why 2.0.
VALENCE_THRESHOLD = 2.0


@dataclass(frozen=True)
class TermSpan:
    term: str  # the text as it appears in the source: source[start:end]
    start: int
    end: int


@dataclass(frozen=True)
class NeutralityIssue:
    term: str  # the text as it appears in the summary: summary[start:end]
    start: int  # offsets into the summary
    end: int


# --- lexicon -------------------------------------------------------------------


def _words(s: str) -> list[str]:
    return s.split()


# Politically loaded or strongly judgemental terms that VADER lacks or rates
# below the threshold: the curated list in worker/loaded_terms.txt (its header
# says how it is kept).
CURATED_TERMS_FILE = "loaded_terms.txt"


@lru_cache(maxsize=1)
def curated_terms() -> tuple[str, ...]:
    """The terms of worker/loaded_terms.txt: whitespace-separated words above its
    ``[phrases]`` line, one phrase per line below it; ``#`` starts a comment."""
    text = (resources.files("worker") / CURATED_TERMS_FILE).read_text(encoding="utf-8")
    terms: list[str] = []
    phrases = False
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line == "[phrases]":
            phrases = True
        elif line:
            terms.extend([" ".join(line.split())] if phrases else line.split())
    return tuple(dict.fromkeys(terms))


# Entries above the threshold that are the ordinary, neutral way to report a
# fact (the valence belongs to the event, not to the writer's framing), words
# that are mostly function/reporting words in news prose ("arguing",
# "praised", "kind of", "pretty much", "at hand", "interest rates"), and
# internet slang/acronyms that collide with names and ordinary words.
_EXCLUDED = frozenset(
    _words(
        """
    war wars warred kill killed killing killings kills murder murdered murders
    die died dead death deaths casualty fatalities fatality fatal fatally corpse
    drown drowned drowns strangled stab suicide suicidal widowed bereaved
    cancer heroin illnesses infected contagion depression depressions sick pain
    hurt harm harmed harms suffer suffered suffers trapped stricken starved
    accident collapse damage destroyed destruction broken bomb attack attacked
    attacker attackers attacking assault assaulted assaults assassination
    assassinations abducted abduction abductions abuse abused abuses harassment
    rape raped rapes rapist rapists slavery hostilities violence
    crime criminal criminals felony felonies smuggler smuggling prison prisoner
    prisoners arrested jailed imprisoned prosecution penalty punitive suspended
    fired ban banned forced eviction foreclosures bankrupt poverty poor poorest
    infringement violate violated violates violating violation violations
    conspiracy crisis scandals threat threatened feared danger defeat defeated
    fail failed failing fails rejected rejecting rejection rejections rejects
    worse worst worsen worsening worsens weakest negative positive
    arguing blamed blaming condemns condemnation praise praised praises
    praising applaud applauding encourage
    free freedom liberty liberties justice peace peacekeeping peacetime
    peacetimes peacefully win wins won winner winners winning award awards
    prize prizes medal bonus bonuses gain save safely rescue survived relief
    care trust interest hand rich richer richest wealth wealthier wealthiest
    strong strength agreement approval benefit beneficiary charities festival
    friend friends respect welcome effective intelligence engagement improved
    improvement succeed succeeds succeeding success successful successfully
    smiled smiles smiling laughed laughing cry crying wept
    dedicated motivated inspired popularity loyalty celebrate celebrated
    celebrates celebrating romance champion champions championships grand super
    supreme superior kind pretty best ethical honor honors uninvolved
    dick rob lol aas aayf afu alol aml ambw amort bfd bfe bff bsod btd bwahahah cwot doa
    effin ffs fkm ftw fubar fwb gla gratz hagd hagn haha hahaha hhoj ilu iluaaf
    ily iyq kfy kia kmuf lmao lmfao lmso lolz lulz lya lyb lyl lylab lylas mml
    mofo muah mwah nfc nfw nme pita prblms ptl rofl roflcopter roflmao rotfl
    rotflmao rotflmfao rotflol rotgl sete sfete sgtm slaw swak tgif tia tops
    tyvm vbg vbs vip vwd vwp woo wtf wtg wth xlnt xoxo xoxozzz ywia
    """
    )
)

# Prefixes after which the rest of a hyphenated word is not checked on its
# own: they negate or reverse it ("anti-war", "non-violent", "un-American").
_REVERSING_PREFIXES = frozenset(
    _words("anti non un counter de dis ex post pre pro semi quasi pseudo mock not")
)

# A word token: word characters joined by inner hyphens or apostrophes; an
# apostrophe followed by a lone "s" (possessive or "it's") ends the token.
_TOKEN_RE = re.compile(r"\w+(?:(?:[-\u2010\u2011]|['\u2019\u02bc](?![sS]\b))\w+)*")
_PART_RE = re.compile(r"[^-\u2010\u2011]+")
_KEY_TABLE = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"})
# A lexicon entry we accept: letters only, words joined by hyphens,
# apostrophes or single spaces, no single-letter first word (emoticons such
# as "x-d", "d-:" fail this), at least three characters.
_ENTRY_RE = re.compile(r"[a-z]{2,}(?:[-' ][a-z]+)*")


@dataclass(frozen=True)
class _Lexicon:
    single: frozenset[str]  # one-token terms
    multi: frozenset[str]  # multi-token terms, tokens joined by one space
    multi_first: frozenset[str]  # first token of each multi-token term
    max_tokens: int
    starters: frozenset[str]  # single | multi_first: the keys a term may start at


def _tokens(s: str) -> list[str]:
    return [m.group().lower().translate(_KEY_TABLE) for m in _TOKEN_RE.finditer(s)]


def _as_key(term: str) -> list[str] | None:
    """Token keys of ``term`` if it consists of word tokens separated by
    whitespace only (so it can be matched token-wise), else ``None``."""
    if _TOKEN_RE.sub(" ", term).strip():
        return None
    return _tokens(term) or None


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    raw = (resources.files("vaderSentiment") / "vader_lexicon.txt").read_text(encoding="utf-8")
    terms: set[str] = set()
    for line in raw.splitlines():
        fields = line.split("\t")
        if len(fields) < 2:
            continue
        word = fields[0].strip()
        try:
            valence = float(fields[1])
        except ValueError:
            continue
        if (
            abs(valence) >= VALENCE_THRESHOLD
            and len(word) >= 3
            and _ENTRY_RE.fullmatch(word)
            and word not in _EXCLUDED
        ):
            terms.add(word)
    terms.update(curated_terms())
    single: set[str] = set()
    multi: set[str] = set()
    for term in terms:
        toks = _as_key(term)
        if toks is None:
            continue
        (single if len(toks) == 1 else multi).add(" ".join(toks))
    multi_first = frozenset(k.split(" ", 1)[0] for k in multi)
    return _Lexicon(
        single=frozenset(single),
        multi=frozenset(multi),
        multi_first=multi_first,
        max_tokens=max((k.count(" ") + 1 for k in multi), default=1),
        starters=frozenset(single) | multi_first,
    )


# --- loaded_terms --------------------------------------------------------------


def _looks_like_name(text: str, start: int, end: int) -> bool:
    """Title-case word in mid-sentence (after a word or a comma on the same
    line): most likely part of a name ("Great Britain", "Supreme Court")."""
    tok = text[start:end]
    if not tok[0].isupper() or tok.isupper():
        return False
    j = start - 1
    while j >= 0 and text[j] in " \t":
        j -= 1
    return j >= 0 and (text[j].isalnum() or text[j] == ",")


def _resolve(cands: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop overlapping spans, preferring the longer (then the earlier) one."""
    starts: list[int] = []
    ends: list[int] = []
    for s, e in sorted(set(cands), key=lambda c: (c[0] - c[1], c[0])):
        i = bisect.bisect_left(starts, s)
        if i > 0 and ends[i - 1] > s:
            continue
        if i < len(starts) and starts[i] < e:
            continue
        starts.insert(i, s)
        ends.insert(i, e)
    return list(zip(starts, ends, strict=True))


# ``_TOKEN_RE`` with the token captured, so that ``re.split`` yields
# separators and tokens alternately.
_SPLIT_RE = re.compile(f"({_TOKEN_RE.pattern})")


class TermScan:
    """The word tokens of one text, found once and looked up as often as
    needed: the pipeline lists a source's lexicon terms before the LLM answers
    and again with the model's own terms added.

    Tokenising is a few C-level passes rather than Python work per token:
    ``re.split`` gives separators and tokens alternately, offsets come from
    their running lengths, and the keys from one ``lower()``/``translate()`` of
    all tokens joined by NUL (no token contains one, and NUL is neither cased
    nor case-ignorable, so ``lower()``'s final-sigma rule sees every token as
    on its own).
    """

    def __init__(self, text: str) -> None:
        self.text = text
        parts = _SPLIT_RE.split(text)
        n = len(parts) // 2
        offsets = list(itertools.accumulate(map(len, parts), initial=0))
        self._seps = parts[0::2]  # _seps[j]: the text between tokens j - 1 and j
        self._starts = offsets[1 : 2 * n : 2]
        self._ends = offsets[2 : 2 * n + 1 : 2]
        keys = "\0".join(parts[1::2]).lower()
        if not text.isascii():  # O(1), unlike looking for _KEY_TABLE's characters
            keys = keys.translate(_KEY_TABLE)
        self._keys = keys.split("\0") if n else []

    def terms(self, extra_terms: Iterable[str] = ()) -> list[TermSpan]:
        """:func:`loaded_terms` of the scanned text."""
        text = self.text
        if not text:
            return []
        lex = _lexicon()
        cands: list[tuple[int, int]] = []

        # Extra terms: token-wise where possible (all occurrences), else find_term.
        extra_single: set[str] = set()
        extra_multi: set[str] = set()
        seen: set[str] = set()
        for term in extra_terms:
            if not isinstance(term, str) or term in seen:
                continue
            seen.add(term)
            term = term.strip()
            while len(term) >= 2 and term[0] in _CLOSERS and term[-1] in _CLOSERS[term[0]]:
                term = term[1:-1].strip()  # a quoted term: "“fiasco”"
            if not term:
                continue
            toks = _as_key(term)
            if toks is None:
                span = find_term(text, term)
                if span is not None and span[0] < span[1]:
                    cands.append(span)
            elif len(toks) == 1:
                extra_single.add(toks[0])
            else:
                extra_multi.add(" ".join(toks))
        multi_first = lex.multi_first
        max_tokens = lex.max_tokens
        starters = lex.starters
        if extra_multi:
            multi_first = multi_first | {k.split(" ", 1)[0] for k in extra_multi}
            max_tokens = max(max_tokens, *(k.count(" ") + 1 for k in extra_multi))
        if extra_single or extra_multi:
            starters = starters | extra_single | multi_first

        keys, starts, ends, seps = self._keys, self._starts, self._ends, self._seps
        single, multi = lex.single, lex.multi
        # Only a token that may start a term, or a hyphenated one (checked part
        # by part), can give a candidate.
        for i in [i for i, key in enumerate(keys) if key in starters or "-" in key]:
            key, s, e = keys[i], starts[i], ends[i]
            if key in extra_single:
                cands.append((s, e))
            elif key in single:
                if not _looks_like_name(text, s, e):
                    cands.append((s, e))
            elif "-" in key:
                parts = list(_PART_RE.finditer(text, s, e))
                if parts[0].group().lower() not in _REVERSING_PREFIXES:
                    for p in parts:
                        pkey = p.group().lower().translate(_KEY_TABLE)
                        if pkey in extra_single or pkey in single:
                            cands.append((p.start(), p.end()))
            if key in multi_first:
                phrase = key
                for j in range(i + 1, min(len(keys), i + max_tokens)):
                    if not seps[j].isspace():
                        break
                    phrase += " " + keys[j]
                    if phrase in extra_multi or (
                        phrase in multi and not _looks_like_name(text, s, e)
                    ):
                        cands.append((s, ends[j]))

        return [TermSpan(text[s:e], s, e) for s, e in _resolve(cands)]


def loaded_terms(text: str, extra_terms: Iterable[str] = ()) -> list[TermSpan]:
    """Every occurrence of a lexicon term in `text` (word boundaries,
    case-insensitive), plus each of `extra_terms` (e.g. the LLM's own list)
    found in the text; sorted by start, no overlaps (prefer the longer span),
    deduplicated by span.  To look up one text more than once, scan it once
    with :class:`TermScan`."""
    return TermScan(text).terms(extra_terms)


# --- quotation -----------------------------------------------------------------

# Opening mark -> marks that close it.  Mixed pairs (“...") are accepted
# because LLM output mixes them.
_CLOSERS: dict[str, str] = {
    '"': '"”',
    "“": '”"',
    "„": '“”"',
    "‘": "’'",
    "'": "'’",
    "«": "»",
    "‹": "›",
}
_MAX_QUOTE_DEPTH = 8  # deeper nesting is not prose; the oldest opener is dropped
_QUOTE_CHARS_RE = re.compile("[\"“”„‘’'«»‹›]")


def _is_word(c: str) -> bool:
    return c.isalnum() or c == "_"


def quoted_regions(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of properly paired quotations, marks included.

    Pairs are found with a stack, so nesting works (“He said ‘no’.”).  A ``'``
    or ``’`` between two word characters is an apostrophe (don't, the
    council’s) and ignored; a ``’`` that closes nothing (the voters’ choice)
    too.  An opening mark that is never closed exempts nothing: better to flag
    a term than to let an unbalanced quote hide the rest of the summary.
    """
    stack: list[tuple[str, int]] = []
    regions: list[tuple[int, int]] = []
    n = len(text)
    for m in _QUOTE_CHARS_RE.finditer(text):
        i = m.start()
        c = m.group()
        prev = text[i - 1] if i > 0 else " "
        nxt = text[i + 1] if i + 1 < n else " "
        if c in "'’" and _is_word(prev) and _is_word(nxt):
            continue  # apostrophe inside a word
        # Does it close an open quotation?  (Search from the innermost.)
        closed = False
        for k in range(len(stack) - 1, -1, -1):
            opener, pos = stack[k]
            if c in _CLOSERS[opener] and not (c == "'" and prev.isspace()):
                regions.append((pos, i + 1))
                del stack[k:]
                closed = True
                break
        if closed or c not in _CLOSERS:
            continue
        if c == "'" and (_is_word(prev) or nxt.isspace()):
            continue  # "voters' choice", or a stray mark
        if len(stack) >= _MAX_QUOTE_DEPTH:
            del stack[0]  # keeps the closing search O(1) on junk input
        stack.append((c, i))
    return sorted(regions)


# --- attribution ---------------------------------------------------------------

# Verbs of saying and opinion that attribute what follows to a holder.  Kept
# to forms that are rarely anything else: "state", "note", "view", "terms",
# "brand", "cast", "maintain", "regard", "thought" are left out because they
# are common nouns or non-speech verbs ("the state's", "with regard to").
_VERBS = _words(
    """
argue argues argued arguing say says said saying claim claims claimed claiming
contend contends contended contending write writes wrote writing
call calls called calling describe describes described describing
assert asserts asserted asserting insist insists insisted insisting
allege alleges alleged alleging believe believes believed believing
think thinks feels considers deem deems deemed
warn warns warned label labels labeled labelled labeling labelling
branded dub dubs dubbed dubbing termed
characterize characterizes characterized characterizing
characterise characterises characterised characterising
portray portrays portrayed portraying depict depicts depicted depicting
deride derides derided deriding decry decries decried decrying
denounce denounces denounced denouncing condemn condemned condemning
criticize criticizes criticized criticizing criticise criticises criticised criticising
accuse accuses accused accusing dismisses dismissed dismissing
praises hails hailed touts touted complain complains complained complaining
lament laments lamented lamenting suggest suggests suggested
stated declare declares declared tell tells told noted
conclude concludes concluded predict predicts predicted
acknowledge acknowledges acknowledged concede concedes conceded
admit admits admitted frames framed casts refers referred
"""
)
_VERB = r"(?:" + "|".join(sorted(_VERBS, key=len, reverse=True)) + r")"
_HOLDER_POSS = r"(?:[\w'’.-]+\s+){0,4}?[\w.-]+(?:['’]s|s['’])"
# Cues after which the rest of the clause is attributed.
_CUE_RE = re.compile(
    rf"\b{_VERB}\b(?!\s+(?:for|off|up)\b)"  # "calls for", "called off": not speech
    r"|\baccording\s+to\b"
    rf"|\bin\s+{_HOLDER_POSS}\s+(?:view|opinion|words|telling|account|estimation|"
    r"assessment|judge?ment|eyes|reading)\b"
    r"|\bin\s+the\s+(?:view|opinion|words|estimation|eyes|judge?ment)\s+of\b"
    rf"|\bfrom\s+{_HOLDER_POSS}\s+(?:perspective|point\s+of\s+view|standpoint)\b",
    re.IGNORECASE,
)
# A comma-delimited attribution tag: ", critics say", ", says the mayor",
# ", according to the author", ", in the author's view".
_TAG_RE = re.compile(
    rf"(?:[\w'’.-]+\s+){{1,6}}?{_VERB}(?:\s+(?:so|too|also))?"
    rf"|{_VERB}(?:\s+[\w'’.-]+){{1,8}}"
    r"|according\s+to\s+.{1,80}"
    rf"|in\s+{_HOLDER_POSS}\s+(?:view|opinion|words|estimation|judge?ment|eyes)"
    r"|in\s+the\s+(?:view|opinion|words|estimation|judge?ment)\s+of\s+.{1,80}",
    re.IGNORECASE | re.DOTALL,
)
# Sentence ends: [.!?…] (plus closing quotes/brackets) before whitespace or the
# end, or a blank line.  Not sentencex: summaries are short plain English
# prose, and where this regex errs (it splits after "Dr." or "U.S.") the
# attribution scope only shrinks, so the gate errs towards flagging.
_SENT_END_RE = re.compile(r"[.!?…]+[\"”’'»)\]]*(?=\s|\Z)|\n\s*\n")
# Clause breaks that end an attribution's scope: "X argues the plan is costly;
# it is a fiasco" -- the second clause is the summary's own voice.
_CLAUSE_BREAK_RE = re.compile(r";|,\s*(?:but|yet|however)\b", re.IGNORECASE)
_COMMA_RE = re.compile(",")
_TRAILING = " \t\r\n.!?…\"”’'»)]"


def _spans(text: str, start: int, end: int, sep: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """Split ``text[start:end]`` at matches of ``sep`` (separators dropped)."""
    pos = start
    for m in sep.finditer(text, start, end):
        if m.end() > m.start():
            yield pos, m.start()
            pos = m.end()
    yield pos, end


def attributed_regions(text: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are attributed speech.

    The rule, per clause (sentence split at ``;`` and ", but/yet/however"):

    * after a cue -- an attribution verb from ``_VERBS`` ("argues", "says",
      "calls", "describes", ...), "according to", "in X's view", "from X's
      perspective" -- the rest of the clause is attributed ("The author calls
      the plan a fiasco", "According to the mayor, the plan is a disaster");
    * a comma-delimited attribution tag that is not the clause's first part
      (", critics say", ", says the mayor", ", in the author's view")
      attributes the whole clause except the tag itself ("The plan is a
      fiasco, critics say").

    Deliberately conservative: words *before* a cue stay in the summary's
    voice ("The reckless mayor says ..." flags "reckless"), and an
    attribution does not reach past its clause.
    """
    regions: list[tuple[int, int]] = []
    for s0, s1 in _spans(text, 0, len(text), _SENT_END_RE):
        for c0, c1 in _spans(text, s0, s1, _CLAUSE_BREAK_RE):
            cue = _CUE_RE.search(text, c0, c1)
            if cue is not None:
                regions.append((cue.end(), c1))
            segments = list(_spans(text, c0, c1, _COMMA_RE))
            for k, (g0, g1) in enumerate(segments):
                if k == 0:
                    continue
                seg = text[g0:g1].strip().rstrip(_TRAILING)
                if seg and _TAG_RE.fullmatch(seg):
                    regions.append((c0, g0))
                    regions.append((g1, c1))
                    break
    return sorted(r for r in regions if r[0] < r[1])


def _merge(regions: Iterable[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Union of (possibly nested or overlapping) spans as sorted, disjoint
    ``(starts, ends)`` lists, for bisection."""
    starts: list[int] = []
    ends: list[int] = []
    for a, b in sorted(regions):
        if starts and a < ends[-1]:
            ends[-1] = max(ends[-1], b)
        else:
            starts.append(a)
            ends.append(b)
    return starts, ends


def _inside(merged: tuple[list[int], list[int]], start: int, end: int) -> bool:
    starts, ends = merged
    i = bisect.bisect_right(starts, start) - 1
    return i >= 0 and end <= ends[i]


def unattributed_loaded_terms(
    summary: str, source_terms: Iterable[str] = ()
) -> list[NeutralityIssue]:
    """Loaded terms the summary uses in its own voice.

    Checked terms: the lexicon's plus ``source_terms`` (the loaded terms found
    in the source, so the summary cannot launder the article's own loaded
    vocabulary).  A term is fine inside paired quotation marks
    (:func:`quoted_regions`) or in attributed speech
    (:func:`attributed_regions`); every other occurrence is an issue.
    """
    found = loaded_terms(summary, source_terms)
    if not found:
        return []
    exempt = _merge([*quoted_regions(summary), *attributed_regions(summary)])
    return [
        NeutralityIssue(t.term, t.start, t.end)
        for t in found
        if not _inside(exempt, t.start, t.end)
    ]
