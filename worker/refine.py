"""The refine stage: points worth reading, from any model.

Small models state one claim as two points, paste every sentence they copied as evidence, give
one quote to several claims, and repeat a summary sentence. After grounding:

- points of one speaker that make the same claim (worker/claims.py) become one, keeping all their
  quotes and premises; a point of another speaker that restates a claim with no verified quote
  is dropped;
- a quote that several points use stays with the claim it is closest to;
- a point keeps at most `MAX_QUOTES` quotes, the verified ones closest to its claim first; the
  article's headline is never evidence;
- a summary sentence that repeats an earlier one is dropped;
- a point credited to the author whose verified quotes all report one other speaker's position
  ("Putin has steadfastly insisted ...") and state its claim is credited to that speaker;
- a position the article reports from someone else (worker/extractive.py: reported_spans) that
  no point states becomes a point of its speaker, with the sentence as its verified quote: small
  models keep the author's line and drop the officials', opponents' and named people's.
"""

import re

from rapidfuzz import fuzz

from kernel.schemas import ArgumentPointPublic, EvidencePublic
from worker.claims import claim_similarity, same_claim
from worker.extractive import ReportedSpan, reported_spans, segments
from worker.schemas import Draft

# stricter than the gold matcher's threshold: a merge loses a point for good
MERGE_THRESHOLD = 85.0
MAX_QUOTES = 3
# a reported sentence shorter than this (in words) is a reply fragment, not a position; the
# offline provider's bound for a point
MIN_POSITION_WORDS = 5
# a summary sentence this close (rapidfuzz ratio of the normalised sentences) repeats another
REPEAT_THRESHOLD = 90.0

_SPACE = re.compile(r"\s+")
_AUTHOR = {"", "author", "the author", "writer", "the writer", "columnist", "the columnist"}


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().strip("\"“”'‘’.").casefold()


def _speaker(name: str) -> str:
    key = _norm(name)
    return "the author" if key in _AUTHOR else key.removeprefix("the ")


def merge_same_claims(points: list[ArgumentPointPublic]) -> list[ArgumentPointPublic]:
    """Points of one speaker that make the same claim, as one (the first's wording)."""
    merged: list[ArgumentPointPublic] = []
    for point in points:
        twin = next(
            (
                kept
                for kept in merged
                if _speaker(kept.speaker) == _speaker(point.speaker)
                and claim_similarity(kept.claim, point.claim) >= MERGE_THRESHOLD
            ),
            None,
        )
        if twin is None:
            merged.append(point.model_copy(deep=True))
            continue
        quotes = {_norm(ev.quote) for ev in twin.evidence}
        twin.evidence += [ev for ev in point.evidence if _norm(ev.quote) not in quotes]
        twin.premises += [p for p in point.premises if p not in twin.premises]
    return merged


def _verified(point: ArgumentPointPublic) -> bool:
    return any(ev.verified for ev in point.evidence)


def without_unbacked_restatements(points: list[ArgumentPointPublic]) -> list[ArgumentPointPublic]:
    """Points without a verified quote that state the claim of another point (credited to another
    speaker: one speaker's twins are merged already), dropped: the article does not show that
    their speaker holds the claim, and a reader would see it twice. Of unbacked twins the first
    stays."""
    return [
        point
        for i, point in enumerate(points)
        if _verified(point)
        or not any(
            (j < i or _verified(other))
            and claim_similarity(other.claim, point.claim) >= MERGE_THRESHOLD
            for j, other in enumerate(points)
            if j != i
        )
    ]


def _fit(evidence: EvidencePublic, point: ArgumentPointPublic) -> float:
    return claim_similarity(point.claim, evidence.quote)


def share_quotes_by_fit(points: list[ArgumentPointPublic]) -> list[ArgumentPointPublic]:
    """A quote given to several points stays only with the claim it is closest to."""
    best: dict[str, tuple[float, int]] = {}
    for index, point in enumerate(points):
        for ev in point.evidence:
            key, fit = _norm(ev.quote), _fit(ev, point)
            if key not in best or fit > best[key][0]:
                best[key] = (fit, index)
    return [
        point.model_copy(
            update={"evidence": [ev for ev in point.evidence if best[_norm(ev.quote)][1] == index]}
        )
        for index, point in enumerate(points)
    ]


def choose_evidence(point: ArgumentPointPublic, title: str | None) -> ArgumentPointPublic:
    """At most MAX_QUOTES quotes, verified ones closest to the claim first, in article order."""
    headline = _norm(title) if title else None
    candidates = [ev for ev in point.evidence if not headline or _norm(ev.quote) != headline]
    ranked = sorted(candidates, key=lambda ev: (not ev.verified, -_fit(ev, point)))
    kept = {id(ev) for ev in ranked[:MAX_QUOTES]}
    return point.model_copy(update={"evidence": [ev for ev in candidates if id(ev) in kept]})


def quote_speaker(evidence: EvidencePublic, spans: list[ReportedSpan], text: str) -> str | None:
    """The one speaker whose reported sentences make up the whole quote: a quote that runs on into
    the article's own voice or into another speaker's words does not say who holds its claim."""
    if evidence.start is None or evidence.end is None:
        return None
    covering = [s for s in spans if s.start < evidence.end and evidence.start < s.end]
    speakers = {_speaker(s.speaker) for s in covering}
    if len(speakers) != 1:
        return None
    at = evidence.start
    for span in covering:
        if text[at : span.start].strip():
            return None  # words of no reported sentence before this one
        at = max(at, span.end)
    return None if text[at : evidence.end].strip() else next(iter(speakers))


def reported_speaker(
    point: ArgumentPointPublic, spans: list[ReportedSpan], text: str
) -> str | None:
    """The one speaker (other than the author) whom all of the point's verified quotes report,
    each quote stating the point's claim (a model's quotes do not always fit its claims)."""
    verified = [ev for ev in point.evidence if ev.verified and ev.start is not None]
    speakers = set()
    for ev in verified:
        who = quote_speaker(ev, spans, text)
        if who is None or not same_claim(point.claim, ev.quote):
            return None
        speakers.add(who)
    return next(iter(speakers)) if len(speakers) == 1 else None


def credit_reported_positions(
    points: list[ArgumentPointPublic], spans: list[ReportedSpan], text: str
) -> list[ArgumentPointPublic]:
    """Points credited to the author whose quotes report someone else, credited to that speaker
    (small models credit nearly everything to the author)."""
    out = []
    for point in points:
        author = _speaker(point.speaker) == "the author"
        holder = reported_speaker(point, spans, text) if author else None
        if holder is None:
            out.append(point)
            continue
        # the speaker's own spelling, as the article writes it
        name = next(s.speaker for s in spans if _speaker(s.speaker) == holder)
        out.append(point.model_copy(update={"speaker": name}))
    return out


def _words(text: str) -> int:
    return len(text.split())


def interviewers(spans: list[ReportedSpan], text: str) -> set[str]:
    """Speakers most of whose sentences are questions: they ask (an interview's moderator), and
    their statements set up the next answer rather than state a position."""
    asked: dict[str, list[bool]] = {}
    for span in spans:
        asked.setdefault(_speaker(span.speaker), []).append(
            text[span.start : span.end].rstrip().endswith("?")
        )
    return {who for who, marks in asked.items() if sum(marks) * 2 > len(marks)}


def position_spans(spans: list[ReportedSpan], text: str) -> list[ReportedSpan]:
    """The reported sentences that state someone else's position: not the author's own ("The
    author argues that ..."), not a question, not a reply fragment ("Everything after school."),
    not an interviewer's."""
    asking = interviewers(spans, text)
    return [
        span
        for span in spans
        if _speaker(span.speaker) not in asking | {"the author"}
        and not text[span.start : span.end].rstrip().endswith("?")
        and _words(text[span.start : span.end]) >= MIN_POSITION_WORDS
    ]


def add_reported_positions(
    points: list[ArgumentPointPublic], spans: list[ReportedSpan], text: str
) -> list[ArgumentPointPublic]:
    """The points, then a point for each position the article reports from someone else that no
    point states (the gold matcher's rule): the sentence as its claim and its quote, credited to
    its speaker."""
    added: list[ArgumentPointPublic] = []
    for span in position_spans(spans, text):
        sentence = text[span.start : span.end]
        if any(same_claim(p.claim, sentence) for p in [*points, *added]):
            continue
        quote = EvidencePublic(
            quote=sentence, start=span.start, end=span.end, verified=True, score=100.0
        )
        added.append(
            ArgumentPointPublic(claim=sentence, speaker=span.speaker, premises=[], evidence=[quote])
        )
    return [*points, *added]


def refine_points(
    points: list[ArgumentPointPublic],
    title: str | None = None,
    text: str = "",
    language: str | None = None,
) -> list[ArgumentPointPublic]:
    """The stage's work on the points of `text` (without it, nothing is credited or added)."""
    spans = reported_spans(text, language) if text.strip() else []
    merged = without_unbacked_restatements(
        merge_same_claims(credit_reported_positions(points, spans, text))
    )
    completed = add_reported_positions(merged, spans, text)
    return [choose_evidence(p, title) for p in share_quotes_by_fit(completed)]


def without_repeats(summary: str, language: str | None = None) -> str:
    """The summary without sentences that repeat an earlier one."""
    sentences = [s.strip() for s in segments(language or "en", summary) if s.strip()]
    kept: list[str] = []
    for sentence in sentences:
        if not any(fuzz.ratio(_norm(sentence), _norm(k)) >= REPEAT_THRESHOLD for k in kept):
            kept.append(sentence)
    return summary if len(kept) == len(sentences) else " ".join(kept)


def refine(
    draft: Draft,
    points: list[ArgumentPointPublic],
    text: str,
    title: str | None,
    language: str | None,
) -> tuple[Draft, list[ArgumentPointPublic]]:
    """The stage: the draft with its summary's repeats dropped, and its points refined."""
    summary = without_repeats(draft.summary, language)
    return draft.model_copy(update={"summary": summary}), refine_points(
        points, title, text, language
    )
