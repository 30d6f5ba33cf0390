"""The offline `extractive` provider: used when no LLM is configured.

Everything here is a classic, deterministic extractive algorithm; nothing is generated beyond a
fixed frame around the article's own sentences, and nothing is downloaded at run time:

* title lines at the top (headline, kicker, dek, byline, "NAME: headline") are told apart from
  the body (short, no closing punctuation) and never summarised: they are thesis cues;
* sentences come from `sentencex` (offline, rule based) per body line, with a tiny regex
  splitter as a fallback if it ever fails on odd input;
* the summary is TextRank (Mihalcea & Tarau 2004): sentences are graph nodes, edges are
  weighted by content-word overlap |common| / (log|s1| + log|s2|), and nodes are ranked by
  weighted PageRank.  The top sentences come in article order; in an opinion piece or analysis
  each is framed as the author's view ("The author argues that ...", or a quotation where
  reported speech would leave part of it in our voice), so no loaded word stands unattributed;
* the thesis of an opinion piece is its dek, else the opening/closing sentence that best
  matches the headline and makes a claim, plus the close's call to act; of a report, its lede;
* argument points are sentences carrying discourse cues (claim / reason / contrast /
  attribution markers, English plus a few for German, Spanish and French) or a speaker,
  ranked by cue strength, speaker and TextRank score; the speaker comes from an interview's
  labels and the subjects of verbs of saying, premises from reason and consequence cues;
* the article type is a documented rule of thumb over cue frequencies, overridden by a kicker.

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
        "said, say, says, argued, argue, argues, claimed, claims, told, stated, added, explained, "
        "warned, warns, insisted, insists, noted, announced, maintained, maintains, believe, "
        "believes, reply, replies, replied, estimate, estimates, urged, demanded, called on, "
        "worry, worries, fear, fears, point out, points out, suggested, suggests, acknowledged, "
        "admitted, denied, hinted, welcomed, contend, contends, predicted, predicts"
    ),
    "de": _phrases(
        "sagte, sagt, erklärte, betonte, warnte, behauptete, meinte, kritisierte, forderte, "
        "fürchten, fürchtet, glaubt, glauben"
    ),
    "es": _phrases(
        "dijo, afirmó, declaró, aseguró, explicó, sostuvo, advirtió, pidió, considera, "
        "consideran, señaló, criticó"
    ),
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


def _build_rules(lang: str) -> _LangRules:
    return _LangRules(
        stop_words=_STOP_WORDS[lang],
        # Cues are searched in the lower-cased sentence.
        cues={kind: _phrase_re(phrases) for kind, phrases in _CUES[lang].items()},
        # These two run on the original sentence (not the lowered copy) so that match
        # offsets index the original text; hence case-insensitive.
        speech_verb=_phrase_re(_SPEECH_VERBS[lang], re.IGNORECASE),
        source_prep=_phrase_re(_SOURCE_PREPS[lang], re.IGNORECASE),
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


def segments(lang: str, text: str) -> list[str]:
    """sentencex's sentences of `text`, or a plain punctuation split where sentencex fails:
    segmentation never fails a job."""
    try:
        import sentencex

        return list(sentencex.segment(lang, text))
    except Exception:  # e.g. unencodable surrogates
        pass
    except BaseException as exc:
        # its Rust core panics on some control characters (U+0085 after a letter), and pyo3
        # raises a panic as a BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
    return [m.group(0) for m in _FALLBACK_SPLIT_RE.finditer(text)]


def _split_sentences(text: str, lang: str) -> list[str]:
    """Stripped, non-empty sentences; each one is a verbatim substring of `text`."""
    pieces = segments(lang, text)
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
        weight = common / max(1.0, logs[i] + logs[j])
        adj[i].append((j, weight))
        adj[j].append((i, weight))
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
# Layout: title lines (headline, kicker, dek, byline) and speaker labels
# --------------------------------------------------------------------------------------

# A line ends like prose when its last visible character closes a sentence.
_PROSE_END_RE = re.compile(r"[.!?…:;][\"'”’»)\]]*\s*$")
_BYLINE_RE = re.compile(
    r"^(?:by|von|por|par|published|updated|veröffentlicht|publicado|publié)\b", re.IGNORECASE
)
# "NAME: headline" (a columnist's name before the headline), "Analysis: ...", "Kommentar: ...".
_LABELLED_TITLE_RE = re.compile(r"^[^\W\d_][\w.'’ -]{1,40}:\s+\S")
_KICKERS = _words(
    """
    opinion analysis comment commentary column editorial kommentar meinung analyse leitartikel
    opinión análisis columna editorial tribune éditorial chronique interview entrevista
    """
)
_TITLE_MAX_WORDS = 25
# A speaker label opening a line of an interview: "Otto Brandt: Because ...".
_LABEL_RE = re.compile(r"^\s*([^\W\d_][\w.'’-]*(?:[ \t]+[^\W\d_][\w.'’-]*){0,3}):[ \t]+(?=\S)")
_NOT_LABELS = _words(
    """
    note update correction photo photos related read watch listen analysis opinion kommentar
    editor's source sources update editor warning
    """
)


@dataclass(frozen=True)
class _Line:
    start: int
    text: str
    title: bool  # headline, kicker, dek or byline: never summarised, used as thesis cues
    label: str | None  # interview speaker label


def _is_title_like(line: str) -> bool:
    """Short and not ending like a sentence, or a byline: a headline, kicker, dek or byline."""
    words = line.split()
    if _BYLINE_RE.match(line) and len(words) <= 8:
        return True
    return len(words) <= _TITLE_MAX_WORDS and not _PROSE_END_RE.search(line)


def _layout(text: str) -> list[_Line]:
    """The text's non-blank lines; title-like lines are only those above the first prose
    line (a short unpunctuated line further down is a subhead: skipped, not a title)."""
    lines: list[_Line] = []
    pos = 0
    in_head = True
    raw_lines = text.split("\n")
    labelled = sum(
        bool(_LABEL_RE.match(x)) and _PROSE_END_RE.search(x) is not None for x in raw_lines
    )
    for raw in raw_lines:
        start = pos
        pos += len(raw) + 1
        stripped = raw.strip()
        if not stripped:
            continue
        offset = start + raw.index(stripped)
        title_like = _is_title_like(stripped)
        if in_head and not title_like:
            in_head = False
        label = None
        m = _LABEL_RE.match(stripped)
        if m and labelled >= 2 and not title_like:
            name = m.group(1)
            if name.lower() not in _NOT_LABELS:
                label = name
        lines.append(_Line(offset, stripped, title_like, label))
    if all(line.title for line in lines):
        # Nothing looks like prose (e.g. one unpunctuated paragraph): treat it all as body.
        lines = [_Line(x.start, x.text, False, x.label) for x in lines]
    return lines


def _headline_parts(lines: list[_Line]) -> tuple[str, list[str], str]:
    """(headline, deks, kicker): title lines in order, kickers and bylines left out; the
    kicker is "opinion", "analysis", ... or "column" for a "NAME: headline" title, else ""."""
    titles = [x.text for x in lines if x.title]
    kicker = next(
        (t.lower().strip(" :|") for t in titles if t.lower().strip(" :|") in _KICKERS), ""
    )
    kept = [
        t for t in titles
        if t.lower().strip(" :|") not in _KICKERS and not _BYLINE_RE.match(t)
    ]  # fmt: skip
    if not kept:
        return "", [], kicker
    headline = kept[0]
    if _LABELLED_TITLE_RE.match(headline):
        label, headline = (part.strip() for part in headline.split(":", 1))
        kicker = kicker or (label.lower() if label.lower() in _KICKERS else "column")
    return headline, [t for t in kept[1:] if len(t.split()) >= 5], kicker


# Kickers that say what kind of piece follows.
_KICKER_TYPES: dict[str, ArticleType] = {
    "analysis": "analysis", "analyse": "analysis", "análisis": "analysis",
    "interview": "other", "entrevista": "other",
}  # fmt: skip


# --------------------------------------------------------------------------------------
# Discourse cues, speakers, article type
# --------------------------------------------------------------------------------------


@dataclass
class _Sentence:
    index: int
    text: str
    tokens: list[str]
    start: int = 0
    label: str | None = None  # the speaker label of its line, in an interview
    cues: set[str] = field(default_factory=set)
    # Cues in the author's own voice: outside quotation marks, in non-attributed sentences.
    authorial_claim: bool = False
    authorial_first_person: bool = False
    score: float = 0.0
    speaker: str | None = None


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


def _determiner_phrase_after(s: str) -> str | None:
    """'the mayor' in '... said the mayor, adding ...' (must end at punctuation)."""
    m = _DET_PHRASE_AFTER_RE.match(s)
    if m and m.group(1).split()[0].lower() in _DETERMINERS:
        return m.group(1)
    return None


# Words between a subject and its verb of saying: auxiliaries and adverbs
# ("putin has steadfastly insisted", "officials also reportedly fear").
_AUXILIARIES = _words(
    """
    has have had is was were are be been will would also repeatedly always long further
    already again publicly previously then now just still often reportedly later since
    hat hatte ist sind wird auch ha había han ya también
    """
)
# Words that end a subject when read backwards ("... so that the mayor said").
_BOUNDARIES = _words(
    """
    that which who whom whose and but because when if while as than so or what where after
    before since though although whether unless until then this these
    dass weil und aber wenn als ob denn que y pero porque cuando si qui et mais
    """
)
_RELATIVE_STARTS = _words("who which whose that der die das welche que quien cuyo qui")
_SUBJECT_SPLIT_RE = re.compile(r"[,;:()\"“”„«»—–\[\]]")
_SUBJECT_MAX_WORDS = 6
# Function words that may stand inside a subject: "a spokesperson for the minister".
_SUBJECT_GLUE = _words("the a an of for at from in on its his her their our de del la el der")


def _subject_tail(piece: str) -> list[str]:
    """The words of `piece` after its last boundary word, if few enough to be a subject."""
    words = piece.split()
    tail: list[str] = []
    for word in reversed(words):
        if word.lower().strip(".'’") in _BOUNDARIES:
            break
        tail.insert(0, word)
    return tail if 0 < len(tail) <= _SUBJECT_MAX_WORDS else []


def _name_like(words: list[str]) -> bool:
    return bool(words) and all(w[:1].isupper() for w in words if w.lower() not in _NOT_NAMES)


def _subject_before(before: str) -> str | None:
    """The subject of a verb of saying, read backwards from the verb: auxiliaries and adverbs
    skipped, an apposition resolved ("the chief executive, Marta Kowal, has insisted" ->
    "Marta Kowal"; "Tom Whitby, who chairs ..., said" -> "Tom Whitby")."""
    words = before.split()
    while words and (
        words[-1].lower() in _AUXILIARIES
        or (words[-1].lower().endswith("ly") and len(words[-1]) > 4)
    ):
        words.pop()
    rest = " ".join(words)
    if not rest:
        return None
    pieces = _SUBJECT_SPLIT_RE.split(rest)
    if rest.rstrip().endswith(",") and len(pieces) >= 3:
        # "A, B, said": B is the apposition (or a relative clause) of A.
        a, b = _subject_tail(pieces[-3]), pieces[-2].split()
        if (b and b[0].lower() in _RELATIVE_STARTS) or (_name_like(a) and not _name_like(b) and a):
            chosen = a
        else:
            chosen = _subject_tail(pieces[-2])
    else:
        chosen = _subject_tail(pieces[-1])
    if not chosen:
        return None
    name = " ".join(chosen).strip(" .'’")
    low = name.lower()
    if low in _FIRST_PERSON:
        return "the author"
    if low in _PRONOUNS or low in ("it", "es", "ello"):
        return "\0pronoun"
    lowered = [w.lower().strip(".'’") for w in chosen]
    if any(w in _STOP_WORDS["en"] and w not in _SUBJECT_GLUE for w in lowered[1:]):
        return None  # "he seems to", "it is hard to": not a subject
    if not any(w not in _STOP_WORDS["en"] and w.isalpha() for w in lowered):
        return None
    return name


def _speaker(sent: _Sentence, rules: _LangRules) -> str | None:
    """The source a sentence attributes its content to, if an attribution pattern names one.

    Handles an interview's speaker label ("Otto Brandt: ..."), 'according to X', '"...,"
    said Jane Doe', '..., said the mayor', and a subject before a verb of saying ('Jane Doe
    has long insisted', 'the chief executive, Marta Kowal, warned', 'critics say').  A
    pronoun subject comes back as "\\0pronoun" for the caller to resolve from the sentences
    before; no match yields None (the caller then uses "the author").
    """
    if sent.label:
        return sent.label
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
        after_quote = before.rstrip().endswith(('"', "”", "»", ",", "“"))
        name = None
        if after_quote:
            name = _name_after(after) or _determiner_phrase_after(after)
        name = name or _subject_before(before)
        if not name and not after_quote:
            name = _name_after(after) or _determiner_phrase_after(after)
        if name:
            return name
    return None


def _person_in(text: str) -> str | None:
    """The first run of two or more capitalised words that is not at the sentence start."""
    for m in re.finditer(r"(?<=\s)([A-ZÀ-Ý][\w'’-]+(?:\s+[A-ZÀ-Ý][\w'’-]+)+)", text):
        return m.group(1)
    return None


def _resolve_pronoun(sentences: list[_Sentence], index: int, named: list[tuple[int, str]]) -> str:
    """The holder a pronoun subject stands for: a speaker named in the last three sentences,
    else a speaker named earlier whose name reappears in the two sentences before ("putin
    didn't like that. he has always maintained ..."), else a person named in the sentence
    before; "an unnamed source" when none is found (a wrong guess would misattribute)."""
    recent = [name for i, name in named if index - i <= 3]
    if recent:
        return recent[-1]
    before = " ".join(s.text.lower() for s in sentences[max(0, index - 2) : index])
    for _, name in reversed(named):
        last_word = name.split()[-1].lower()
        if re.search(rf"(?<!\w){re.escape(last_word)}(?!\w)", before):
            return name
    prev = sentences[index - 1].text if index else ""
    return _person_in(prev) or "an unnamed source"


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


# --------------------------------------------------------------------------------------
# Premises
# --------------------------------------------------------------------------------------

# Inside a sentence: "<claim>, because <reason>", "<claim>, thanks to <reason>".
_REASON_INSIDE: dict[str, str] = {
    "en": r"\b(?:because|since|as a result of|thanks to|due to|owing to|given that)\b(?! of)",
    "de": r",\s*(?:weil|da|denn)\b|\bwegen\b",
    "es": r"\b(?:porque|ya que|puesto que|debido a|gracias a)\b",
    "fr": r"\b(?:parce que|puisque|car|en raison de|grâce à)\b",
}
# A sentence opening with these draws its conclusion from the sentence before.
_CONSEQUENCE_START: dict[str, str] = {
    "en": r"(?:as a result|therefore|thus|hence|consequently|that's why|that is why|this is why"
    r"|for this reason|because of (?:this|these|that)|so)\b",
    "de": r"(?:deshalb|daher|darum|deswegen|folglich|somit)\b",
    "es": r"(?:por eso|por ello|por lo tanto|así que|en consecuencia)\b",
    "fr": r"(?:donc|ainsi|c'est pourquoi|par conséquent)\b",
}
# A sentence opening with these gives the reason for the sentence before.
_REASON_START: dict[str, str] = {
    "en": r"(?:this is because|that is because|that's because|because|after all)\b",
    "de": r"(?:denn|weil)\b",
    "es": r"(?:porque|ya que)\b",
    "fr": r"(?:car|parce que)\b",
}


def _clause(text: str) -> str:
    return text.strip().strip(",;:").strip().rstrip(".!?\"'”»").strip()


def _premises(sentences: list[_Sentence], i: int, lang: str) -> list[str]:
    """The reasons the text gives for sentence i: a reason clause inside it, the sentence
    before when i draws a consequence from it ("As a result, ..."), the sentence after when
    that one explains i ("This is because ...")."""
    sent = sentences[i]
    inside = re.compile(_REASON_INSIDE.get(lang, _REASON_INSIDE["en"]), re.IGNORECASE)
    consequence = re.compile(_CONSEQUENCE_START.get(lang, _CONSEQUENCE_START["en"]), re.IGNORECASE)
    reason_start = re.compile(_REASON_START.get(lang, _REASON_START["en"]), re.IGNORECASE)
    text = sent.text.replace("’", "'")
    out: list[str] = []
    m = inside.search(text)
    if m and m.start() > 0:
        clause = _clause(
            sent.text[m.end() :].split(",")[0]
            if m.group(0).lower() in ("thanks to", "due to", "owing to", "as a result of")
            else sent.text[m.end() :]
        )
        if len(clause.split()) >= 3:
            out.append(clause)
    elif m and m.start() == 0 and "," in sent.text:
        clause = _clause(sent.text[m.end() : sent.text.index(",")])
        if len(clause.split()) >= 3:
            out.append(clause)
    if i > 0 and consequence.match(text.lstrip()):
        out.append(_clause(sentences[i - 1].text))
    if i + 1 < len(sentences):
        nxt = sentences[i + 1].text.replace("’", "'").lstrip()
        r = reason_start.match(nxt)
        if r:
            clause = _clause(sentences[i + 1].text.lstrip()[r.end() :])
            if len(clause.split()) >= 3:
                out.append(clause)
    return list(dict.fromkeys(c for c in out if c))


# --------------------------------------------------------------------------------------
# Framing: every sentence of an opinion piece is reported as its holder's view
# --------------------------------------------------------------------------------------

_CONNECTOR_RE = re.compile(
    r"^(?:and|but|so|yet|still|however|meanwhile|instead|worse yet|worse still|indeed"
    r"|that'?s why|that is why|this is why|of course|after all|in short|as a result|therefore"
    r"|thus|hence|consequently|aber|doch|und|pero|y"
    r"|sin embargo|mais|et)\b[,:]?\s+",
    re.IGNORECASE,
)
# (framed as reported speech, framed as a quotation); "{}" is the article's sentence.
_FRAMES: dict[str, tuple[tuple[str, ...], str]] = {
    "en": (
        ("The author argues that {}", "The author writes that {}", "The author contends that {}"),
        "The author writes: “{}”",
    ),
    "de": ((), "Der Autor schreibt: „{}“"),
    "es": (("El autor sostiene que {}", "El autor escribe que {}"), "El autor escribe: «{}»"),
    "fr": (("L'auteur estime que {}", "L'auteur écrit que {}"), "L'auteur écrit : « {} »"),
}
_CONCLUDING_FRAME = {"en": "The author concludes that {}"}


def _without_connector(text: str) -> str:
    """The sentence without a leading discourse connector ("That's why, ...", "But ...")."""
    rest = _CONNECTOR_RE.sub("", text.replace("’", "'"), count=1)
    return text[len(text) - len(rest) :] if rest != text.replace("’", "'") else text


def _is_fully_attributed(framed: str, start: int) -> bool:
    """framed[start:] lies wholly in quotation or attributed speech (the neutrality check's
    own rules, so the check agrees)."""
    from worker.neutrality import attributed_regions, quoted_regions

    end = len(framed.rstrip(" .!?…\"'”»"))
    regions = [*quoted_regions(framed), *attributed_regions(framed)]
    covered = start
    for a, b in sorted(regions):
        if a <= covered < b or (a <= covered and b >= end):
            covered = max(covered, b)
    return covered >= end


def _own_voice_loaded_terms(text: str) -> bool:
    from worker.neutrality import unattributed_loaded_terms

    return bool(unattributed_loaded_terms(text))


def _frame(
    sentence: str, lang: str, stop_words: frozenset[str], holder: str, n: int, last: bool = False
) -> str:
    """`sentence` as `holder`'s view: reported speech when the whole sentence then counts as
    attributed, else a quotation."""
    body = _without_connector(sentence).strip()
    reported, quoted = _FRAMES.get(lang, _FRAMES["en"])
    first = body.split(" ", 1)[0]
    if first.lower() in stop_words and not first.isupper():
        body_low = body[:1].lower() + body[1:]
    else:
        body_low = body
    has_first_person = any(w in _FIRST_PERSON for w in _WORD_RE.findall(body.lower()))
    if holder != "the author":
        reported = (f"{holder} says that {{}}",) if lang == "en" else ()
        quoted = f"{holder}: “{{}}”"
    if reported and not has_first_person:
        template = reported[n % len(reported)]
        if last and lang in _CONCLUDING_FRAME and holder == "the author":
            template = _CONCLUDING_FRAME[lang]
        framed = template.format(body_low.rstrip())
        if not framed.endswith((".", "!", "?", "…", "”", '"')):
            framed += "."
        if lang != "en" or _is_fully_attributed(framed, template.index("{}")):
            return framed
    return quoted.format(body)


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / math.sqrt(len(a) * len(b)) if a and b else 0.0


def _stems(tokens: list[str]) -> set[str]:
    return {t[:6] for t in tokens}


def _body_sentences(text: str, lines: list[_Line], lang: str, rules: _LangRules) -> list[_Sentence]:
    out: list[_Sentence] = []
    for line in lines:
        if line.title:
            continue
        body = line.text
        label_end = 0
        if line.label:
            m = _LABEL_RE.match(body)
            label_end = m.end() if m else 0
        pos = 0
        for piece in _split_sentences(body[label_end:], lang):
            found = body.find(piece, max(pos, label_end))
            if found < 0:
                continue
            pos = found + len(piece)
            sent = _analyse(piece, len(out), rules)
            sent.start = line.start + found
            sent.label = line.label
            if line.label:  # the speaker's first person and claims, not the author's
                sent.authorial_claim = sent.authorial_first_person = False
            out.append(sent)
    return out


def _words_of(s: _Sentence) -> int:
    return len(s.text.split())


def _opinion_thesis(
    usable: list[_Sentence],
    deks: list[str],
    title_stems: set[str],
    lang: str,
    rules: _LangRules,
) -> tuple[_Sentence, str]:
    """An opinion piece's main claim, attributed to the author: the dek when the editors wrote
    one, else the opening or closing sentence that best matches the headline, repeats the
    piece's other opening/closing sentences and makes a claim; then the close's call to action
    ("... should ...") when it is another sentence."""
    candidates = usable[:3] + [s for s in usable[-2:] if s not in usable[:3]]
    stems = {s.index: _stems(s.tokens) for s in candidates}

    def score(s: _Sentence) -> float:
        mine = stems[s.index]
        centrality = sum(_overlap(mine, other) for i, other in stems.items() if i != s.index)
        own_voice = s.speaker in (None, "the author")
        return (
            1.5 * _overlap(mine, title_stems)
            + 0.5 * centrality
            + 0.8 * ("claim" in s.cues)
            + 0.8 * ("reason" in s.cues)
            + 0.5 * s.score
            + (0.0 if own_voice else -1.0)
            - (0.3 if _CONNECTOR_RE.match(s.text.replace("’", "'")) else 0.0)
        )

    best = max(candidates, key=lambda s: (score(s), -s.index))
    main = deks[0] if deks else best.text
    thesis = _frame(main, lang, rules.stop_words, "the author", 0)
    close = next(
        (
            s
            for s in reversed(usable[-2:])
            if s.authorial_claim and s.text != main and s.speaker in (None, "the author")
        ),
        None,
    )
    if close is not None:
        extra = _frame(close.text, lang, rules.stop_words, "the author", 1)
        prefix, also = "The author argues that ", "The author writes that "
        if thesis.startswith(prefix) and extra.startswith(also):
            thesis = thesis.rstrip(".") + ", and that " + extra[len(also) :]
        else:
            thesis = thesis + " " + extra
    return best, thesis


def _attribute(sentences: list[_Sentence], rules: _LangRules) -> None:
    """Each sentence's speaker, pronouns resolved to the last speaker named shortly before."""
    last_named: list[tuple[int, str]] = []
    for s in sentences:
        who = _speaker(s, rules)
        if who == "\0pronoun":
            who = _resolve_pronoun(sentences, s.index, last_named)
        if who and who != "the author":
            last_named.append((s.index, who))
        s.speaker = who


@dataclass(frozen=True)
class ReportedSpan:
    """A sentence of the clean text that attributes its content to someone other than the author."""

    start: int
    end: int
    speaker: str


def reported_spans(clean_text: str, language: str | None = None) -> list[ReportedSpan]:
    """The body sentences that report someone else's position, with that speaker (the same
    attribution rules as the offline provider's points), in text order."""
    lang = _normalise_language(language, clean_text)
    rules = _RULES.get(lang, _RULES["en"])
    lines = _layout(clean_text) if clean_text.strip() else []
    sentences = _body_sentences(clean_text, lines, lang, rules)
    _attribute(sentences, rules)
    return [
        ReportedSpan(s.start, s.start + len(s.text), s.speaker)
        for s in sentences
        if s.speaker and s.speaker not in ("the author", "an unnamed source")
    ]


def summarize_extractive(
    clean_text: str,
    *,
    language: str | None = None,
    max_summary_sentences: int = 5,
    max_points: int = 8,
) -> Draft:
    """Extractive Draft: a TextRank summary whose sentences are attributed to their holders,
    a thesis from the headline/dek and opening/closing cues, and cue-based argument points
    with speakers and premises; evidence quotes are the article's sentences verbatim."""
    text = clean_text if isinstance(clean_text, str) else ""
    lang = _normalise_language(language, text)
    rules = _RULES.get(lang, _RULES["en"])  # other languages: English cues and stop words

    lines = _layout(text) if text.strip() else []
    sentences = _body_sentences(text, lines, lang, rules)
    # loaded_language stays empty: the loaded-language lexicon is handled by another module.
    if not sentences:
        return Draft(
            article_type="other", thesis="", summary="", argument_points=[], loaded_language=[]
        )

    scores = _pagerank(_similarity_graph([s.tokens for s in sentences]))
    top = max(scores)
    for s, sc in zip(sentences, scores, strict=True):
        s.score = sc / top if top > 0 else 0.0

    headline, deks, kicker = _headline_parts(lines)
    interview = sum(s.label is not None for s in sentences) >= 2
    article_type = _article_type(sentences)
    if kicker:
        article_type = _KICKER_TYPES.get(kicker, "opinion")
    elif interview:
        article_type = "other"
    opinionated = article_type in ("opinion", "analysis")

    _attribute(sentences, rules)

    # Thesis: the editors put it in the headline and dek, the author in the opening and close.
    title_stems = _stems(
        [
            w
            for t in [headline, *deks]
            for w in _WORD_RE.findall(t.lower())
            if w not in rules.stop_words
        ]
    )
    usable = [s for s in sentences if _words_of(s) >= 6 and not s.text.rstrip().endswith("?")]
    if not usable:
        usable = sentences
    if not opinionated:
        # News and interviews: the lede says what happened.
        thesis_sent = usable[0]
        thesis = thesis_sent.text
    else:
        thesis_sent, thesis = _opinion_thesis(usable, deks, title_stems, lang, rules)

    # Summary: TextRank with light preferences (claims and speakers, not questions, not short
    # or dangling sentences), about a third of the sentences, in article order.
    def summary_score(s: _Sentence) -> float:
        penalty = 0.0
        if _words_of(s) < 6 or s.text.rstrip().endswith("?"):
            penalty += 1.0
        if _CONNECTOR_RE.match(s.text.replace("’", "'")) or s.text.lower().startswith(
            ("this ", "that ", "it ", "these ")
        ):
            penalty += 0.2
        bonus = 0.3 * bool(s.cues & {"claim", "reason"}) + 0.2 * bool(s.speaker)
        return s.score + bonus - penalty

    k = min(max(1, max_summary_sentences), max(1, math.ceil(len(sentences) / 3)))
    chosen = sorted(sentences, key=lambda s: (-summary_score(s), s.index))[:k]
    if thesis_sent not in chosen and k > 1:
        chosen = [thesis_sent, *chosen[: k - 1]]
    chosen.sort(key=lambda s: s.index)
    parts: list[str] = []
    for i, s in enumerate(chosen):
        holder = s.speaker if s.label else "the author"
        if (
            not opinionated
            and s.speaker not in (None, "the author")
            and not s.label
            and lang == "en"
            and not _own_voice_loaded_terms(s.text)
        ):
            # A report's quotation or attributed speech ('"...," said X') with no loaded word
            # left in the article's voice: kept as it is.
            parts.append(s.text)
        elif opinionated or s.label:
            last = i == len(chosen) - 1 and s.index >= len(sentences) - 2 and i > 0
            parts.append(_frame(s.text, lang, rules.stop_words, holder or "the author", i, last))
        else:
            parts.append(s.text)
    summary = " ".join(parts)

    # Argument points: sentences carrying cues or naming a speaker, ranked by cue strength,
    # speaker and TextRank; questions and fragments are not claims.
    def point_score(s: _Sentence) -> float:
        return _cue_strength(s) + (1.0 if s.speaker else 0.0) + s.score

    arguing = sorted(
        (
            s
            for s in sentences
            if (s.cues or s.speaker) and _words_of(s) >= 5 and not s.text.rstrip().endswith("?")
        ),
        key=lambda s: (-point_score(s), s.index),
    )
    picked = sorted(arguing[: max(0, max_points)], key=lambda s: s.index)
    # model_construct: the length bounds in worker.schemas guard LLM answers; verbatim sentences
    # of the article (one may run long in unpunctuated text) are ours and need no such guard.
    points = [
        DraftPoint.model_construct(
            claim=_without_connector(s.text),
            speaker=s.speaker or "the author",
            premises=_premises(sentences, s.index, lang),
            evidence=[DraftEvidence.model_construct(quote=s.text)],
        )
        for s in picked
    ]

    return Draft.model_construct(
        article_type=article_type,
        thesis=thesis,
        summary=summary,
        argument_points=points,
        loaded_language=[],
    )
