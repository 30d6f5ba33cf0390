"""`evenhand eval DIR`: every article of a folder through the configured provider, with the
figures we judge a model by; with `--gold`, also scored against each article's reference file
(NAME.gold.json beside NAME.txt, format in testkit/fixtures/gold/README.md).

`--save-drafts OUT` also writes each article's draft as the drafter gave it (before grounding and
refine) to OUT/NAME.draft.json; `--from-drafts OUT` scores those drafts again with the stages
after the draft as they are now, without calling the drafter. A real model's runs are not
repeatable, so refine variants are compared on the same saved drafts.
"""

import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kernel.config import Settings
from kernel.schemas import ResultPublic
from worker.claims import WORD_RE, match_claims, same_claim
from worker.cleaning import CleanedText
from worker.drafting import Labels, draft, labels
from worker.errors import PipelineError
from worker.grounding import Grounder
from worker.llm import Deadline
from worker.neutrality import TermScan, attributed_regions, loaded_terms, quoted_regions
from worker.pipeline import after_draft, summarize_article
from worker.prepare import SourceArticle, extract_text, prepare
from worker.schemas import Draft, DraftEvidence, DraftPoint, Usage

ARTICLE_SUFFIXES = {".txt": "text", ".html": "html", ".htm": "html"}
GOLD_SUFFIX = ".gold.json"
DRAFT_SUFFIX = ".draft.json"


def matcher_accuracy(pairs: list[dict[str, Any]]) -> float:
    """Share of hand-labelled pairs ({"a", "b", "same"}) the matcher decides as labelled."""
    right = sum(same_claim(p["a"], p["b"]) == bool(p["same"]) for p in pairs)
    return right / len(pairs) if pairs else 0.0


_AUTHOR_NAMES = frozenset(
    {"the author", "author", "the columnist", "the writer", "der autor", "die autorin", "el autor"}
)
_SPEAKER_DROP = frozenset({"the", "a", "an", "der", "die", "das", "el", "la", "los", "las", "un"})


def _speaker_words(name: str) -> frozenset[str]:
    words = WORD_RE.findall(name.lower().replace("’", "'").replace("'s", ""))
    return frozenset(w for w in words if w not in _SPEAKER_DROP)


def same_speaker(predicted: str, holders: list[str]) -> bool:
    """The predicted speaker names one of the reference holders: "the author" for the author,
    else all words of the shorter name in the longer ("Mercer" ~ "Dale Mercer")."""
    said = predicted.strip().lower().replace("’", "'")
    for holder in holders:
        wanted = holder.strip().lower().replace("’", "'")
        if wanted in _AUTHOR_NAMES or said in _AUTHOR_NAMES:
            if wanted in _AUTHOR_NAMES and said in _AUTHOR_NAMES:
                return True
            continue
        a, b = _speaker_words(said), _speaker_words(wanted)
        if a and b and (a <= b or b <= a):
            return True
    return False


# --- loaded terms left in our own voice -----------------------------------------------------------


def unattributed_occurrences(text: str, terms: list[str]) -> list[str]:
    """Occurrences of `terms` in `text` outside quotation marks and attributed speech (the same
    rules as the neutrality check, applied to the reference list instead of the lexicon)."""
    if not text or not terms:
        return []
    exempt = [*quoted_regions(text), *attributed_regions(text)]
    found = []
    for term in terms:
        for m in re.finditer(rf"(?<!\w){re.escape(term)}\w*", text, re.IGNORECASE):
            if not any(a <= m.start() and m.end() <= b for a, b in exempt):
                found.append(m.group(0))
    return found


# --- the reference file ---------------------------------------------------------------------------


@dataclass
class GoldPoint:
    claim: str
    holders: list[str]


@dataclass
class Gold:
    thesis: str
    key_points: list[GoldPoint]
    loaded_terms: list[str]
    speakers: list[str]
    kept_sentences: list[str]
    boilerplate_lines: list[str]
    expect_error: str = ""
    kind: str = ""
    language: str = ""


def load_gold(path: Path) -> Gold:
    data = json.loads(path.read_text(encoding="utf-8"))
    points = []
    for point in data.get("key_points", []):
        holder = point["holder"]
        points.append(GoldPoint(point["claim"], [holder] if isinstance(holder, str) else holder))
    return Gold(
        thesis=data.get("thesis", ""),
        key_points=points,
        loaded_terms=data.get("loaded_terms", []),
        speakers=data.get("speakers", []),
        kept_sentences=data.get("kept_sentences", []),
        boilerplate_lines=data.get("boilerplate_lines", []),
        expect_error=data.get("expect_error") or "",
        kind=data.get("kind", ""),
        language=data.get("language", ""),
    )


def gold_path(article: Path) -> Path:
    return article.with_name(article.stem + GOLD_SUFFIX)


# --- scores against the reference -----------------------------------------------------------------


def duplicate_points(claims: list[str]) -> int:
    """Points that state the same claim as an earlier one, by the gold matcher's rule, whoever
    they are credited to: what a reader sees twice (one claim held by two speakers counts too,
    so this is an upper bound)."""
    return sum(
        any(same_claim(claim, earlier) for earlier in claims[:i]) for i, claim in enumerate(claims)
    )


@dataclass
class GoldScores:
    """Counts, so that articles add up; the rates are computed from them."""

    points_reference: int = 0
    points_predicted: int = 0
    points_matched: int = 0
    points_duplicated: int = 0  # result points restating an earlier point
    speakers_right: int = 0  # of the matched points
    theses: int = 0  # articles with a reference thesis
    thesis_matched: int = 0
    loaded_unattributed: int = 0  # reference loaded terms in summary or thesis in our own voice
    lexicon_terms: int = 0  # reference loaded terms ...
    lexicon_found: int = 0  # ... that the neutrality lexicon finds in the clean text
    boilerplate_lines: int = 0
    boilerplate_removed: int = 0
    kept_sentences: int = 0
    kept_found: int = 0
    errors_expected: int = 0
    errors_right: int = 0

    def add(self, other: "GoldScores") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def rates(self) -> dict[str, float | None]:
        def rate(part: int, whole: int) -> float | None:
            return round(part / whole, 3) if whole else None

        return {
            "point_recall": rate(self.points_matched, self.points_reference),
            "point_precision": rate(self.points_matched, self.points_predicted),
            "speaker_accuracy": rate(self.speakers_right, self.points_matched),
            "thesis_match": rate(self.thesis_matched, self.theses),
            "lexicon_recall": rate(self.lexicon_found, self.lexicon_terms),
            "boilerplate_removal": rate(self.boilerplate_removed, self.boilerplate_lines),
            "sentence_retention": rate(self.kept_found, self.kept_sentences),
        }


def score_against_gold(
    result: ResultPublic | None, error: str, clean_text: str, gold: Gold
) -> GoldScores:
    """How one article's result (None when it failed with `error`) and clean text compare with
    its reference."""
    scores = GoldScores(
        boilerplate_lines=len(gold.boilerplate_lines),
        kept_sentences=len(gold.kept_sentences),
        lexicon_terms=len(gold.loaded_terms),
        errors_expected=int(bool(gold.expect_error)),
        errors_right=int(bool(gold.expect_error) and error == gold.expect_error),
    )
    lines = {line.strip() for line in clean_text.split("\n")}
    scores.boilerplate_removed = sum(line.strip() not in lines for line in gold.boilerplate_lines)
    flat = " ".join(clean_text.split())
    scores.kept_found = sum(" ".join(s.split()) in flat for s in gold.kept_sentences)
    found = {t.term.lower() for t in loaded_terms(clean_text)}
    scores.lexicon_found = sum(
        any(f == term.lower() or f.startswith(term.lower()) for f in found)
        for term in gold.loaded_terms
    )
    if gold.expect_error:
        return scores
    scores.points_reference = len(gold.key_points)
    scores.theses = int(bool(gold.thesis))
    if result is None:
        return scores
    predicted = result.argument_points
    scores.points_predicted = len(predicted)
    pairs = match_claims([p.claim for p in predicted], [g.claim for g in gold.key_points])
    scores.points_matched = len(pairs)
    scores.points_duplicated = duplicate_points([p.claim for p in predicted])
    scores.speakers_right = sum(
        same_speaker(predicted[i].speaker, gold.key_points[j].holders) for i, j in pairs
    )
    scores.thesis_matched = int(bool(gold.thesis) and same_claim(result.thesis, gold.thesis))
    scores.loaded_unattributed = len(
        unattributed_occurrences(result.summary, gold.loaded_terms)
    ) + len(unattributed_occurrences(result.thesis, gold.loaded_terms))
    return scores


# --- rows -----------------------------------------------------------------------------------------


@dataclass
class EvalRow:
    article: str
    error: str = ""
    quotes: int = 0
    verified: int = 0
    # the support check's verdicts on the verified quotes (the rest were not judged)
    supports: int = 0
    partial: int = 0
    unrelated: int = 0
    loaded_in_source: int = 0
    loaded_in_summary: int = 0
    lines_removed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    seconds: float = 0.0
    gold: GoldScores | None = field(default=None)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        if self.gold is None:
            data.pop("gold")
        else:
            data["gold"] = {**asdict(self.gold), **self.gold.rates()}
        return data


def _source(path: Path) -> SourceArticle:
    return SourceArticle(
        input_kind=ARTICLE_SUFFIXES[path.suffix.lower()],
        raw_text=path.read_text(encoding="utf-8"),
        title=path.stem,
    )


def _clean_text(article: SourceArticle) -> str:
    """The article's clean text ("" when nothing is left), as the pipeline's cleaner makes it."""
    from worker.cleaning import clean_text

    return clean_text(extract_text(article.input_kind, article.raw_text)).text


# --- saved drafts ---------------------------------------------------------------------------------


@dataclass
class SavedDraft:
    """One article's draft as the drafter gave it, or the code it failed with."""

    label: Labels
    draft: Draft | None
    usage: Usage
    error: str = ""


def draft_file(folder: Path, article: Path) -> Path:
    return folder / (article.stem + DRAFT_SUFFIX)


def save_draft(path: Path, saved: SavedDraft) -> None:
    data = {
        "label": asdict(saved.label),
        "error": saved.error,
        "usage": saved.usage.model_dump(),
        "draft": None,
    }
    if saved.draft is not None:
        data["draft"] = {**saved.draft.model_dump(), "defaulted": saved.draft.defaulted}
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def load_draft(path: Path) -> SavedDraft:
    data = json.loads(path.read_text(encoding="utf-8"))
    drafted = None
    if (fields := data.get("draft")) is not None:
        # model_construct: the draft was read and bounded once when the drafter answered (a
        # map-reduce draft may hold more points than one answer is allowed to)
        points = [
            DraftPoint.model_construct(
                claim=p["claim"],
                speaker=p["speaker"],
                premises=list(p["premises"]),
                evidence=[DraftEvidence.model_construct(quote=e["quote"]) for e in p["evidence"]],
            )
            for p in fields["argument_points"]
        ]
        drafted = Draft.model_construct(
            article_type=fields["article_type"],
            thesis=fields["thesis"],
            summary=fields["summary"],
            argument_points=points,
            loaded_language=list(fields["loaded_language"]),
        )
        drafted.mark_defaulted(*fields.get("defaulted", []))
    return SavedDraft(Labels(**data["label"]), drafted, Usage(**data["usage"]), data["error"])


def analyse_with_draft(
    article: SourceArticle,
    cleaned: CleanedText,
    settings: Settings,
    saved: SavedDraft | None = None,
) -> tuple[ResultPublic, SavedDraft]:
    """worker.pipeline.analyse's stages, with the draft handed back (to save it) or handed in (a
    saved one: then the drafter and the support check, both LLM calls, are not run; the support
    check only adds verdicts, so the gold scores do not depend on it)."""
    text = cleaned.text
    grounder = Grounder(text)
    scan = TermScan(text)
    deadline = Deadline(settings.job_time_limit)
    if saved is None:
        lexicon_terms = [span.term for span in scan.terms()]
        drafted, usage = draft(article, text, grounder, lexicon_terms, settings, deadline)
        saved = SavedDraft(labels(settings), drafted, usage.model_copy())
        judge = saved.label.provider != "extractive" and settings.support_check
    else:
        if saved.draft is None:
            raise PipelineError(saved.error or "no_draft", "the saved draft is a failure")
        drafted, usage, judge = saved.draft, saved.usage.model_copy(), False
    result = after_draft(
        article, cleaned, drafted, usage, saved.label, grounder, scan, settings, deadline, judge
    )
    return result, saved


def _result(
    path: Path,
    article: SourceArticle,
    settings: Settings,
    save_to: Path | None,
    saved_in: Path | None,
) -> ResultPublic:
    if save_to is None and saved_in is None:
        return summarize_article(article, settings)
    saved = None
    if saved_in is not None:
        if not draft_file(saved_in, path).is_file():
            raise PipelineError("no_draft", f"no saved draft for {path.name} in {saved_in}")
        saved = load_draft(draft_file(saved_in, path))
    try:
        cleaned = prepare(article, settings).cleaned
        result, saved = analyse_with_draft(article, cleaned, settings, saved)
    except PipelineError as exc:
        if save_to is not None:
            save_draft(
                draft_file(save_to, path), SavedDraft(labels(settings), None, Usage(), exc.code)
            )
        raise
    if save_to is not None:
        save_draft(draft_file(save_to, path), saved)
    return result


def evaluate_file(
    path: Path,
    settings: Settings,
    with_gold: bool = False,
    save_drafts: Path | None = None,
    from_drafts: Path | None = None,
) -> EvalRow:
    article = _source(path)
    row = EvalRow(article=path.name)
    started = time.perf_counter()
    result: ResultPublic | None = None
    try:
        result = _result(path, article, settings, save_drafts, from_drafts)
    except PipelineError as exc:
        row.error = exc.code
    else:
        row.quotes, row.verified = result.grounding.quotes, result.grounding.verified
        grounding = result.grounding
        row.supports, row.partial, row.unrelated = (
            grounding.supports,
            grounding.partial,
            grounding.unrelated,
        )
        row.loaded_in_source = len(result.loaded_language)
        row.loaded_in_summary = len(result.neutrality.summary_loaded_terms)
        row.lines_removed = result.cleaning.lines_removed
        row.prompt_tokens = result.usage.prompt_tokens
        row.completion_tokens = result.usage.completion_tokens
        row.llm_calls = result.usage.llm_calls
    row.seconds = time.perf_counter() - started
    reference = gold_path(path)
    if with_gold and reference.exists():
        row.gold = score_against_gold(result, row.error, _clean_text(article), load_gold(reference))
    return row


def evaluate_folder(
    folder: Path,
    settings: Settings,
    with_gold: bool = False,
    save_drafts: Path | None = None,
    from_drafts: Path | None = None,
) -> list[EvalRow]:
    """Every article of `folder`; with `save_drafts`, each draft saved there; with `from_drafts`,
    the drafts saved there instead of the drafter's (an article without one is an error)."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES)
    if save_drafts is not None:
        save_drafts.mkdir(parents=True, exist_ok=True)
    return [evaluate_file(path, settings, with_gold, save_drafts, from_drafts) for path in paths]


def total(rows: list[EvalRow]) -> EvalRow:
    overall = EvalRow(article="overall", error=f"{sum(bool(r.error) for r in rows)} failed")
    for name in (
        "quotes", "verified", "supports", "partial", "unrelated", "loaded_in_source",
        "loaded_in_summary", "lines_removed",
        "prompt_tokens", "completion_tokens", "llm_calls", "seconds",
    ):  # fmt: skip
        setattr(overall, name, sum(getattr(r, name) for r in rows))
    golds = [r.gold for r in rows if r.gold is not None]
    if golds:
        overall.gold = GoldScores()
        for scores in golds:
            overall.gold.add(scores)
    return overall
