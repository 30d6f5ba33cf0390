"""The offline `extractive` provider: used when no LLM is configured.

Everything here is a classic, deterministic extractive algorithm; nothing is generated or
rephrased, and nothing is downloaded or fetched at run time:

* sentences come from `sentencex` (offline, rule based), with a tiny regex splitter as a
  fallback if it ever fails on odd input;
* the summary is TextRank (Mihalcea & Tarau 2004): sentences are graph nodes, edges are
  weighted by content-word overlap |common| / (log|s1| + log|s2|), and nodes are ranked by
  weighted PageRank.  The top sentences are returned *verbatim and in article order*: an
  extractive summary cannot rephrase or attribute, so the honest thing is to quote;
* argument points are sentences carrying discourse cues (claim / reason / contrast /
  attribution markers, English plus a few for German, Spanish and French), ranked by cue
  strength plus TextRank score.  Claims and evidence quotes are the sentences verbatim;
* the article type is a documented rule of thumb over cue frequencies.

The caller labels the result with provider "extractive"; this module only produces the Draft.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations

from worker.schemas import ArticleType, Draft, DraftEvidence, DraftPoint

__all__ = ["summarize_extractive"]


def _words(s: str) -> frozenset[str]:
    return frozenset(s.split())


def _phrases(s: str) -> tuple[str, ...]:
    """Comma-separated cue phrases ("should, ought to") -> ("should", "ought to")."""
    return tuple(p.strip() for p in s.split(",") if p.strip())


# --------------------------------------------------------------------------------------
# Language data (small, hand-written lists; no downloads)
# --------------------------------------------------------------------------------------

_STOP_WORDS: dict[str, frozenset[str]] = {
    "en": _words(
        """
        a about above after again against all also am an and any are aren't as at be
        because been before being below between both but by can can't cannot could couldn't
        did didn't do does doesn't doing don't down during each few for from further had
        hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself
        him himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself
        just let's many may me might more most much must mustn't my myself no nor not now of
        off on once one only or other ought our ours ourselves out over own said same says
        shan't she she'd she'll she's should shouldn't so some such than that that's the
        their theirs them themselves then there there's these they they'd they'll they're
        they've this those though through to too under until up upon us very was wasn't we
        we'd we'll we're we've were weren't what what's when when's where where's which while
        who who's whom why why's will with won't would wouldn't yet you you'd you'll you're
        you've your yours yourself yourselves also even still however thus therefore since
        according told
        """
    ),
    "de": _words(
        """
        aber alle allem allen aller alles als also am an ander andere anderem anderen
        anderer anderes auch auf aus bei bin bis bist da damit dann das dass dein deine dem
        den denn der des dich die dies diese diesem diesen dieser dieses dir doch dort du
        durch ein eine einem einen einer eines er es etwas euch euer eure für gegen gewesen
        hab habe haben hat hatte hier hin hinter ich ihm ihn ihnen ihr ihre im in indem ins
        ist jede jedem jeden jeder jedes jetzt kann kein keine können man manche mein meine
        mich mir mit muss müssen nach nicht nichts noch nun nur ob oder ohne sehr sein seine
        sich sie sind so solche soll sollte sollten sondern sonst über um und uns unser unter
        viel vom von vor war waren warum was weil weiter welche wenn wer werden wie wieder
        will wir wird wo wollen würde zu zum zur zwar zwischen laut sagte sagt jedoch
        """
    ),
    "es": _words(
        """
        a al algo algunas algunos ante antes como con contra cual cuando de del desde donde
        durante e el ella ellas ellos en entre era es esa esas ese eso esos esta estaba
        estado estas este esto estos fue ha hay la las le les lo los más me mi mis mucho muy
        nada ni no nos nosotros o os otra otro para pero poco por porque que quien se sea
        ser si sido sin sobre son su sus también tanto te tiene todo todos tu tus un una uno
        unos y ya yo debe deben según dijo
        """
    ),
    "fr": _words(
        """
        a à ai au aux avec avait c ce cela ces cet cette comme d dans de des du elle elles
        en est et été être eu il ils j je l la le les leur leurs lui m ma mais me même mes
        moi mon n ne nos notre nous on ont ou où par pas pour qu que qui s sa sans se ses
        son sont sur ta te tes toi ton tous tout très tu un une vos votre vous y doit
        selon car donc
        """
    ),
}

# Distinctive function words used only to guess the language when none is given.
_LANG_HINTS: dict[str, frozenset[str]] = {
    "en": _words("the and is are was of to that it with for this have not be"),
    "de": _words("der die das und ist nicht ein eine mit ich sich auf den dem zu auch"),
    "es": _words("el los las y es por una del se con para lo pero como más"),
    "fr": _words("le les des et est une du pour pas dans qui au sur ce sont"),
}

# Discourse cues per language.  Phrases are matched case-insensitively on word boundaries.
_CUES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "claim": _phrases(
            "should, shouldn't, must, mustn't, ought to, we need, we have to, has to, have to, "
            "it is time, it's time, i believe, i think, i argue, in my view, in my opinion, "
            "the truth is, clearly, obviously, surely, undoubtedly, of course, we cannot, "
            "we can't, it is wrong, it is right, it is essential, it is vital, it is crucial, "
            "no one should, let us, let's"
        ),
        "reason": _phrases(
            "because, since, as a result, therefore, thus, hence, that's why, that is why, "
            "which means, this means, consequently, due to, given that, for this reason, "
            "so that, leads to, led to"
        ),
        "contrast": _phrases(
            "but, however, although, though, yet, nevertheless, nonetheless, on the other hand, "
            "despite, whereas, even so, instead"
        ),
        "attribution": _phrases(
            "said, says, according to, argued, argues, claimed, claims, told, stated, added, "
            "explained, warned, insisted, noted"
        ),
    },
    "de": {
        "claim": _phrases(
            "sollte, sollten, muss, müssen, wir brauchen, es ist zeit, es ist an der zeit, "
            "ich glaube, ich denke, meiner meinung nach, meines erachtens, offensichtlich, "
            "klar ist, zweifellos"
        ),
        "reason": _phrases(
            "weil, denn, deshalb, daher, darum, deswegen, folglich, aus diesem grund, "
            "das bedeutet, somit"
        ),
        "contrast": _phrases("aber, jedoch, obwohl, allerdings, trotzdem, dennoch, doch"),
        "attribution": _phrases(
            "sagte, sagt, laut, zufolge, erklärte, betonte, warnte, behauptete, argumentierte, "
            "meinte"
        ),
    },
    "es": {
        "claim": _phrases(
            "debería, deberíamos, deberían, debe, deben, tenemos que, hay que, creo que, "
            "en mi opinión, a mi juicio, es hora de, claramente, sin duda, es necesario"
        ),
        "reason": _phrases(
            "porque, ya que, puesto que, por lo tanto, por eso, por ello, así que, debido a, "
            "en consecuencia, lo que significa"
        ),
        "contrast": _phrases("pero, sin embargo, aunque, no obstante, en cambio"),
        "attribution": _phrases(
            "dijo, afirmó, según, declaró, aseguró, explicó, sostuvo, advirtió"
        ),
    },
    "fr": {
        "claim": _phrases(
            "doit, doivent, devrait, devraient, devrions, il faut, je pense, je crois, "
            "à mon avis, selon moi, il est temps, clairement, sans aucun doute, nous devons"
        ),
        "reason": _phrases(
            "parce que, car, puisque, donc, ainsi, c'est pourquoi, par conséquent, en raison de, "
            "ce qui signifie"
        ),
        "contrast": _phrases("mais, cependant, pourtant, bien que, toutefois, néanmoins"),
        "attribution": _phrases(
            "a déclaré, a dit, selon, affirme, a affirmé, a expliqué, estime, a averti, a souligné"
        ),
    },
}

# How much each kind of cue says "this sentence argues something" (presence, not count).
_CUE_WEIGHTS = {"claim": 1.5, "reason": 1.0, "attribution": 1.0, "contrast": 0.5}

# Verbs after which a speaker's name may follow ('"...," said Jane Doe') or before which it
# may stand ('Jane Doe said ...'), and prepositions introducing a source ('according to X').
_SPEECH_VERBS: dict[str, tuple[str, ...]] = {
    "en": _phrases(
        "said, says, argued, argues, claimed, claims, told, stated, added, explained, warned, "
        "insisted, noted"
    ),
    "de": _phrases("sagte, sagt, erklärte, betonte, warnte, behauptete, meinte"),
    "es": _phrases("dijo, afirmó, declaró, aseguró, explicó, sostuvo, advirtió"),
    "fr": _phrases("a déclaré, a dit, affirme, a affirmé, a expliqué, a averti, a souligné"),
}
_SOURCE_PREPS: dict[str, tuple[str, ...]] = {
    "en": _phrases("according to"),
    "de": _phrases("laut"),
    "es": _phrases("según"),
    "fr": _phrases("selon"),
}
_PRONOUNS = _words("he she they him her them er sie ella él ellos ellas il elle ils elles")
_FIRST_PERSON = _words(
    """
    i me my mine myself we us our ours ourselves ich mich mir mein meine wir uns unser
    unsere yo me mi mis nosotros nosotras nuestro nuestra je moi mon ma mes nous notre nos
    """
)
# Capitalised words that are not names of speakers.
_NOT_NAMES = _words(
    """
    the a an this that these those it its but and or so then he she they we i you his her
    their our my on in at by for with from to of monday tuesday wednesday thursday friday
    saturday sunday january february march april may june july august september october
    november december yesterday today der die das ein eine el la los las un una le les des
    """
)
_DETERMINERS = _words("the a an der die das den dem el la los las le les un une una")

# A reason clause that can be split off cleanly: "<claim>, because <reason>."
_REASON_SPLIT: dict[str, str] = {
    "en": r"\bbecause\b",
    "de": r",\s*weil\b",
    "es": r"\bporque\b",
    "fr": r"\bparce que\b",
}

_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_QUOTED_RE = re.compile(r"\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]|«[^»]*»")
_FALLBACK_SPLIT_RE = re.compile(r"[^\n]*?(?:[.!?…]+(?=\s)|\n|$)")
_NAME_TOKEN_RE = re.compile(r"[^\W\d_][\w'’.-]*")
_PHRASE_WORD_RE = re.compile(r"[^\W\d_][\w'’-]*")
_DET_PHRASE_AFTER_RE = re.compile(r"([^\W\d_]+(?:[ \t]+[^\W\d_][\w'’-]*){1,3})[ \t]*(?=[,.;:!?]|$)")

# Bounds that keep the cost near-linear on very long or degenerate input.
_MAX_PAIR_UPDATES = 300_000  # see _similarity_graph
_PAGERANK_MAX_ITER = 100
_PAGERANK_DAMPING = 0.85
_PAGERANK_TOL = 1e-6


def _phrase_re(phrases: tuple[str, ...], flags: int = 0) -> re.Pattern[str]:
    alts = sorted((re.escape(p).replace(r"\ ", r"\s+") for p in phrases), key=len, reverse=True)
    return re.compile(r"(?<![\w'])(?:" + "|".join(alts) + r")(?![\w'])", flags)


@dataclass(frozen=True)
class _LangRules:
    stop_words: frozenset[str]
    cues: dict[str, re.Pattern[str]]
    speech_verb: re.Pattern[str]
    source_prep: re.Pattern[str]
    reason_split: re.Pattern[str]


def _build_rules(lang: str) -> _LangRules:
    return _LangRules(
        stop_words=_STOP_WORDS[lang],
        # Cues are searched in the lower-cased sentence.
        cues={kind: _phrase_re(phrases) for kind, phrases in _CUES[lang].items()},
        # These two run on the original sentence (not the lowered copy) so that match
        # offsets index the original text; hence case-insensitive.
        speech_verb=_phrase_re(_SPEECH_VERBS[lang], re.IGNORECASE),
        source_prep=_phrase_re(_SOURCE_PREPS[lang], re.IGNORECASE),
        reason_split=re.compile(_REASON_SPLIT[lang], re.IGNORECASE),
    )


_RULES: dict[str, _LangRules] = {lang: _build_rules(lang) for lang in _CUES}


# --------------------------------------------------------------------------------------
# Sentences and language
# --------------------------------------------------------------------------------------


def _normalise_language(language: str | None, text: str) -> str:
    """Return an ISO-639-1-ish code; guess among en/de/es/fr when none is given."""
    if language:
        code = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
        if code:
            return code
    return _guess_language(text)


def _guess_language(text: str) -> str:
    """Cheap stop-word vote over the beginning of the text; default English."""
    words = _WORD_RE.findall(text[:4000].lower())
    scores = {lang: sum(1 for w in words if w in hints) for lang, hints in _LANG_HINTS.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] >= 2 and scores[best] > scores["en"] else "en"


def _split_sentences(text: str, lang: str) -> list[str]:
    """Stripped, non-empty sentences; each one is a verbatim substring of `text`."""
    try:
        import sentencex

        pieces = list(sentencex.segment(lang, text))
    except Exception:  # e.g. unencodable surrogates; never let segmentation fail the job
        pieces = [m.group(0) for m in _FALLBACK_SPLIT_RE.finditer(text)]
    out: list[str] = []
    pos = 0
    for piece in pieces:
        s = piece.strip()
        if not s:
            continue
        # Guarantee verbatim-ness even if a segmenter ever normalised something.
        found = text.find(s, pos)
        if found < 0:
            if s not in text:
                continue
        else:
            pos = found + len(s)
        out.append(s)
    return out


# --------------------------------------------------------------------------------------
# TextRank
# --------------------------------------------------------------------------------------


def _similarity_graph(tokens: list[list[str]]) -> list[list[tuple[int, float]]]:
    """Undirected weighted adjacency lists, Mihalcea & Tarau (2004) similarity:

        sim(Si, Sj) = |{w : w in Si and w in Sj}| / (log|Si| + log|Sj|)

    over lower-cased content words (stop words removed).  The denominator is floored at 1
    so that pairs of one- or two-word sentences (log 1 = 0) do not get infinite or inflated
    weights.

    Instead of comparing all n^2/2 pairs, common-word counts are accumulated from an
    inverted index (word -> sentences containing it): only pairs that share a word can
    have a non-zero edge, so the result is identical, and for ordinary articles it is much
    cheaper.  On very long or degenerate texts (thousands of sentences, or a word that
    occurs in most of them) the index itself can imply millions of pairs, so words are
    added rarest-first until `_MAX_PAIR_UPDATES` pair updates are reached; the words left
    out are the most widespread ones, which act like extra stop words for that text and
    say the least about which sentences are central.  This bounds both the graph build and
    the PageRank iterations; articles of ordinary length stay well below the budget.
    """
    n = len(tokens)
    index: dict[str, list[int]] = {}
    for i, toks in enumerate(tokens):
        for w in set(toks):
            index.setdefault(w, []).append(i)

    shared: Counter[tuple[int, int]] = Counter()
    budget = _MAX_PAIR_UPDATES
    for postings in sorted(index.values(), key=len):
        k = len(postings)
        if k < 2:
            continue
        cost = k * (k - 1) // 2
        if cost > budget:
            break  # every later word is at least as widespread
        budget -= cost
        shared.update(combinations(postings, 2))  # C-level counting; postings are ascending

    logs = [math.log(len(t)) if t else 0.0 for t in tokens]
    adj: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for (i, j), common in shared.items():
        w = common / max(1.0, logs[i] + logs[j])
        adj[i].append((j, w))
        adj[j].append((i, w))
    return adj


def _pagerank(adj: list[list[tuple[int, float]]]) -> list[float]:
    """Weighted PageRank by power iteration on an undirected graph.

    Hand-written on purpose: it is ~20 lines, and networkx's `pagerank` needs scipy/numpy,
    which this offline path should not pull in.  Scores sum to 1; the rank mass of isolated
    sentences (no edges) is spread uniformly, as networkx does for dangling nodes.
    Convergence: L1 change < n * tol (networkx's criterion), at most 100 iterations.
    """
    n = len(adj)
    if n == 0:
        return []
    d = _PAGERANK_DAMPING
    strength = [sum(w for _, w in nbrs) for nbrs in adj]
    # Undirected graph: in-neighbours are out-neighbours; pre-normalise by the source's
    # total edge weight so each iteration is a plain weighted sum.
    incoming = [[(j, w / strength[j]) for j, w in nbrs] for nbrs in adj]
    dangling = [i for i in range(n) if strength[i] == 0.0]
    pr = [1.0 / n] * n
    for _ in range(_PAGERANK_MAX_ITER):
        base = (1.0 - d) / n + d * sum(pr[i] for i in dangling) / n
        new = [base + d * sum(w * pr[j] for j, w in nbrs) for nbrs in incoming]
        err = sum(abs(a - b) for a, b in zip(new, pr, strict=True))
        pr = new
        if err < n * _PAGERANK_TOL:
            break
    return pr


# --------------------------------------------------------------------------------------
# Discourse cues, speakers, article type
# --------------------------------------------------------------------------------------


@dataclass
class _Sentence:
    index: int
    text: str
    tokens: list[str]
    cues: set[str] = field(default_factory=set)
    # Cues in the author's own voice: outside quotation marks, in non-attributed sentences.
    authorial_claim: bool = False
    authorial_first_person: bool = False
    score: float = 0.0


def _analyse(text: str, index: int, rules: _LangRules) -> _Sentence:
    lowered = text.lower().replace("’", "'")
    tokens = [w for w in _WORD_RE.findall(lowered) if w not in rules.stop_words]
    sent = _Sentence(index=index, text=text, tokens=tokens)
    sent.cues = {kind for kind, rx in rules.cues.items() if rx.search(lowered)}
    if "attribution" not in sent.cues:
        own = _QUOTED_RE.sub(" ", lowered)
        sent.authorial_claim = bool(rules.cues["claim"].search(own))
        sent.authorial_first_person = any(w in _FIRST_PERSON for w in _WORD_RE.findall(own))
    return sent


def _cue_strength(sent: _Sentence) -> float:
    return sum(_CUE_WEIGHTS[kind] for kind in sent.cues)


def _is_name_word(word: str) -> bool:
    return word[:1].isupper() and word.lower().strip(".") not in _NOT_NAMES


def _name_after(s: str) -> str | None:
    """Capitalised words at the start of `s` ("Jane Doe, a nurse" -> "Jane Doe")."""
    words: list[str] = []
    pos = 0
    while len(words) < 4:
        m = _NAME_TOKEN_RE.match(s, pos)
        if not m or not _is_name_word(m.group(0)):
            break
        words.append(m.group(0))
        pos = m.end()
        gap = re.match(r"[ \t]+", s[pos:])
        if not gap:
            break
        pos += gap.end()
    name = " ".join(words).rstrip(".'’-")
    return name or None


def _name_before(s: str) -> str | None:
    """Capitalised words at the end of `s` ("Yesterday Jane Doe" -> "Jane Doe")."""
    words = s.rstrip(" ,\t").split()
    name: list[str] = []
    for word in reversed(words[-4:]):
        if not _NAME_TOKEN_RE.fullmatch(word) or not _is_name_word(word):
            break
        name.insert(0, word)
    return " ".join(name) or None


def _determiner_phrase_before(s: str) -> str | None:
    """A short determiner phrase at the end of `s` ("... The transit authority")."""
    words = s.rstrip(" \t").split()[-5:]
    for k in range(len(words) - 2, -1, -1):
        tail = words[k:]
        if tail[0].lower() in _DETERMINERS and all(_PHRASE_WORD_RE.fullmatch(w) for w in tail):
            return " ".join(tail)
    return None


def _determiner_phrase_after(s: str) -> str | None:
    """'the mayor' in '... said the mayor, adding ...' (must end at punctuation)."""
    m = _DET_PHRASE_AFTER_RE.match(s)
    if m and m.group(1).split()[0].lower() in _DETERMINERS:
        return m.group(1)
    return None


def _speaker(sent: _Sentence, rules: _LangRules) -> str | None:
    """The source a sentence attributes its content to, if an attribution pattern names one.

    Handles '"...," said Jane Doe', 'Jane Doe said ...', 'The ministry said ...',
    '..., said the mayor.' and 'according to Jane Doe' / 'according to the ministry'.
    A pronoun subject ('she said') is not resolved (a wrong guess would misattribute a
    claim to a named person) and yields "an unnamed source"; no match yields None (the
    caller then uses "the author").
    """
    if "attribution" not in sent.cues:
        return None
    text = sent.text
    m = rules.source_prep.search(text)
    if m:
        rest = text[m.end() :].lstrip()
        name = _name_after(rest)
        if name:
            return name
        phrase = re.match(r"[^,.;:!?\"“”«»()]{1,60}", rest)
        if phrase:
            words = phrase.group(0).split()[:5]
            if words and words[0].lower() in _DETERMINERS:
                return " ".join(words)
    for m in rules.speech_verb.finditer(text):
        before = text[: m.start()]
        after = text[m.end() :].lstrip()
        name = (
            _name_after(after)
            or _determiner_phrase_after(after)
            or _name_before(before)
            or _determiner_phrase_before(before)
        )
        if name:
            return name
        prev = before.rstrip(" ,\t").split()[-1:]
        if prev and prev[0].lower() in _PRONOUNS:
            return "an unnamed source"
    return None


def _article_type(sentences: list[_Sentence]) -> ArticleType:
    """Rule of thumb over the share of sentences carrying each kind of cue:

    * "news":     attribution in >= 20% of sentences, and the author's own first-person
                  and normative claims (outside quotes, in non-attributed sentences) are
                  rare (< 10% each);
    * "opinion":  the author's first person in >= 10%, or normative claims in >= 15%;
    * "analysis": reason cues in >= 15% with little first person (< 10%);
    * "other":    anything else (including empty text).
    """
    n = len(sentences)
    if n == 0:
        return "other"
    attribution = sum("attribution" in s.cues for s in sentences) / n
    reason = sum("reason" in s.cues for s in sentences) / n
    claim = sum(s.authorial_claim for s in sentences) / n
    first_person = sum(s.authorial_first_person for s in sentences) / n
    if attribution >= 0.2 and first_person < 0.1 and claim < 0.1:
        return "news"
    if first_person >= 0.1 or claim >= 0.15:
        return "opinion"
    if reason >= 0.15 and first_person < 0.1:
        return "analysis"
    return "other"


def _premises(sent: _Sentence, rules: _LangRules) -> list[str]:
    """A reason clause split off cleanly ("X, because Y." -> ["Y"]), else []."""
    m = rules.reason_split.search(sent.text)
    if not m or m.start() == 0:
        return []
    clause = sent.text[m.end() :].strip().rstrip(".!?\"'”»").strip()
    return [clause] if len(clause.split()) >= 3 else []


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def summarize_extractive(
    clean_text: str,
    *,
    language: str | None = None,
    max_summary_sentences: int = 5,
    max_points: int = 8,
) -> Draft:
    """Extractive Draft: TextRank summary and cue-based argument points, all verbatim."""
    text = clean_text if isinstance(clean_text, str) else ""
    lang = _normalise_language(language, text)
    rules = _RULES.get(lang, _RULES["en"])  # other languages: English cues and stop words

    raw = _split_sentences(text, lang) if text.strip() else []
    sentences = [_analyse(s, i, rules) for i, s in enumerate(raw)]
    # loaded_language stays empty: the loaded-language lexicon is handled by another module.
    if not sentences:
        return Draft(
            article_type="other", thesis="", summary="", argument_points=[], loaded_language=[]
        )

    scores = _pagerank(_similarity_graph([s.tokens for s in sentences]))
    top = max(scores)
    for s, sc in zip(sentences, scores, strict=True):
        s.score = sc / top if top > 0 else 0.0
    by_rank = sorted(sentences, key=lambda s: (-s.score, s.index))

    # Summary: about a third of the sentences (at least one), capped, in article order.
    k = min(max(1, max_summary_sentences), max(1, math.ceil(len(sentences) / 3)))
    summary = " ".join(s.text for s in sorted(by_rank[:k], key=lambda s: s.index))

    # Thesis: best-ranked sentence making a claim or giving a reason, else best-ranked.
    thesis = next((s for s in by_rank if s.cues & {"claim", "reason"}), by_rank[0]).text

    # Argument points: cue-bearing sentences by cue strength + normalised TextRank score
    # (in [0, 1], so it breaks ties within a cue class), then back into article order.
    arguing = sorted(
        (s for s in sentences if s.cues),
        key=lambda s: (-(_cue_strength(s) + s.score), s.index),
    )
    picked = sorted(arguing[: max(0, max_points)], key=lambda s: s.index)
    # model_construct: the length bounds in worker.schemas guard LLM answers; verbatim sentences
    # of the article (one may run long in unpunctuated text) are ours and need no such guard.
    points = [
        DraftPoint.model_construct(
            claim=s.text,
            speaker=_speaker(s, rules) or "the author",
            premises=_premises(s, rules),
            evidence=[DraftEvidence.model_construct(quote=s.text)],
        )
        for s in picked
    ]

    return Draft.model_construct(
        article_type=_article_type(sentences),
        thesis=thesis,
        summary=summary,
        argument_points=points,
        loaded_language=[],
    )
