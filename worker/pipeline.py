"""The summarization pipeline, stage by stage: prepare -> draft -> ground -> refine -> support ->
check -> assemble, then store (worker.runner, for jobs).

Each stage is a plain function, callable and testable alone; `analyse` runs draft to assemble on
a prepared text and `summarize_article` runs them all without a database (`evenhand summarize`,
`evenhand eval`). No database session is held while the LLM is working.
"""

from dataclasses import dataclass

from kernel.config import Settings
from kernel.schemas import (
    ArgumentPointPublic,
    EvidencePublic,
    GroundingPublic,
    LoadedTerm,
    NeutralityPublic,
    ResultPublic,
    UsagePublic,
)
from worker.cleaning import CleanedText
from worker.drafting import Labels, draft, labels
from worker.grounding import Grounder
from worker.llm import Deadline, get_llm
from worker.neutrality import TermScan, TermSpan, unattributed_loaded_terms
from worker.prepare import SourceArticle, cleaning_figures, prepare
from worker.refine import refine
from worker.sanitize import strip_foreign_links
from worker.schemas import Draft, Usage
from worker.support import judge_support

# --- ground ---------------------------------------------------------------------------------------


def without_foreign_links(draft: Draft, text: str) -> Draft:
    """The draft's own prose without links, images and URLs the article does not contain.

    Quotes are left as they are: grounding judges them against the text.
    """
    points = [
        point.model_copy(
            update={
                "claim": strip_foreign_links(point.claim, text),
                "speaker": strip_foreign_links(point.speaker, text),
                "premises": [strip_foreign_links(p, text) for p in point.premises],
            }
        )
        for point in draft.argument_points
    ]
    return draft.model_copy(
        update={
            "summary": strip_foreign_links(draft.summary, text),
            "thesis": strip_foreign_links(draft.thesis, text),
            "argument_points": points,
        }
    )


def ground_points(draft: Draft, grounder: Grounder) -> list[ArgumentPointPublic]:
    """Locate every quote in the clean text; `verified` is ours, never the model's."""
    points = []
    for point in draft.argument_points:
        evidence = []
        for item in point.evidence:
            match = grounder.locate(item.quote)
            evidence.append(
                EvidencePublic(
                    quote=item.quote,
                    start=match.start,
                    end=match.end,
                    verified=match.verified,
                    score=match.score,
                )
            )
        points.append(
            ArgumentPointPublic(
                claim=point.claim, speaker=point.speaker, premises=point.premises, evidence=evidence
            )
        )
    return points


def ground(draft: Draft, grounder: Grounder) -> tuple[Draft, list[ArgumentPointPublic]]:
    """The draft without foreign links, and its points with every quote located in the text."""
    clean = without_foreign_links(draft, grounder.clean_text)
    return clean, ground_points(clean, grounder)


# --- check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    source_terms: list[TermSpan]  # the source's loaded terms, each found in the text
    summary_loaded_terms: list[LoadedTerm]  # left in the summary outside quotes and attribution


def check(draft: Draft, scan: TermScan) -> Checked:
    """The neutrality check: the source's loaded terms (the lexicon's plus the drafter's own, each
    found in the text), and those the summary uses unattributed."""
    source_terms = scan.terms(extra_terms=draft.loaded_language)
    leftover = unattributed_loaded_terms(draft.summary, [t.term for t in source_terms])
    return Checked(
        source_terms=source_terms,
        summary_loaded_terms=[LoadedTerm(term=i.term, start=i.start, end=i.end) for i in leftover],
    )


# --- assemble -------------------------------------------------------------------------------------


def assemble(
    draft: Draft,
    points: list[ArgumentPointPublic],
    checked: Checked,
    label: Labels,
    usage: Usage,
    cleaned: CleanedText,
) -> ResultPublic:
    """The result as it is stored and served."""
    quotes = [ev for point in points for ev in point.evidence]
    verdicts = [ev.support for ev in quotes]
    return ResultPublic(
        article_type=draft.article_type,
        thesis=draft.thesis,
        summary=draft.summary,
        argument_points=points,
        loaded_language=[
            LoadedTerm(term=t.term, start=t.start, end=t.end) for t in checked.source_terms
        ],
        provider=label.provider,
        model=label.model,
        prompt_version=label.prompt_version,
        usage=UsagePublic(**usage.model_dump()),
        grounding=GroundingPublic(
            quotes=len(quotes),
            verified=sum(ev.verified for ev in quotes),
            supports=verdicts.count("supports"),
            partial=verdicts.count("partial"),
            unrelated=verdicts.count("unrelated"),
        ),
        cleaning=cleaning_figures(cleaned),
        neutrality=NeutralityPublic(summary_loaded_terms=checked.summary_loaded_terms),
        defaulted=draft.defaulted,
    )


# --- the stages in order --------------------------------------------------------------------------


def analyse(
    article: SourceArticle,
    cleaned: CleanedText,
    settings: Settings,
    deadline: Deadline | None = None,
) -> ResultPublic:
    """Draft, ground, check and assemble the result of one clean text."""
    text = cleaned.text
    grounder = Grounder(text)
    scan = TermScan(text)  # tokenised once: the lexicon's terms now, the drafter's in `check`
    lexicon_terms = [span.term for span in scan.terms()]
    label = labels(settings)
    deadline = deadline or Deadline(settings.job_time_limit)
    drafted, usage = draft(article, text, grounder, lexicon_terms, settings, deadline)
    judge = label.provider != "extractive" and settings.support_check
    return after_draft(
        article, cleaned, drafted, usage, label, grounder, scan, settings, deadline, judge
    )


def after_draft(
    article: SourceArticle,
    cleaned: CleanedText,
    drafted: Draft,
    usage: Usage,
    label: Labels,
    grounder: Grounder,
    scan: TermScan,
    settings: Settings,
    deadline: Deadline,
    judge: bool,
) -> ResultPublic:
    """Ground, refine, (with `judge`) the support check, check and assemble a draft."""
    drafted, points = ground(drafted, grounder)
    if settings.refine:
        drafted, points = refine(drafted, points, cleaned.text, article.title, article.language)
    if judge:
        points, used = judge_support(
            points,
            get_llm(settings),
            deadline,
            title=article.title,
            source=article.source,
            language=article.language,
        )
        usage.add(used)
    return assemble(drafted, points, check(drafted, scan), label, usage, cleaned)


def summarize_article(article: SourceArticle, settings: Settings) -> ResultPublic:
    """The whole pipeline on one article, without a database: what `evenhand summarize` runs."""
    return analyse(article, prepare(article, settings).cleaned, settings)
