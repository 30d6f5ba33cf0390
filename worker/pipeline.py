"""The summarization pipeline: load -> clean -> summarize (LLM or extractive) -> ground -> store.

Callable without Celery (`evenhand summarize`, tests); the Celery task is a thin wrapper around
`run_job`. No database session is held while the LLM is working.
"""

import hashlib
import uuid
from dataclasses import dataclass

import structlog
import trafilatura
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from evenhand.config import Settings
from evenhand.db import session_scope
from evenhand.jobs import claim_job, fail_job, mark_succeeded
from evenhand.models import ArgumentPoint, Article, Evidence, Job, Result
from evenhand.schemas import (
    ArgumentPointPublic,
    CleaningPublic,
    EvidencePublic,
    GroundingPublic,
    LoadedTerm,
    ResultPublic,
    UsagePublic,
)
from worker.cleaning import CleanedText, clean_text
from worker.errors import PipelineError
from worker.extractive import summarize_extractive
from worker.grounding import Grounder, find_term
from worker.llm import summarize_with_llm
from worker.prompts import PROMPT_VERSION
from worker.schemas import Draft, Usage

log = structlog.get_logger(__name__)

EXTRACTIVE_MODEL = "textrank"
EXTRACTIVE_VERSION = "extractive-v1"


@dataclass(frozen=True)
class SourceArticle:
    """What the pipeline needs of an article, detached from any database session."""

    input_kind: str
    raw_text: str
    title: str | None = None
    source: str | None = None
    language: str | None = None


def extract_text(article: SourceArticle) -> str:
    """The article's text as submitted, with an HTML page reduced to its main content."""
    if article.input_kind == "html":
        extracted = trafilatura.extract(
            article.raw_text, include_comments=False, include_tables=False, favor_precision=True
        )
        return extracted or ""
    return article.raw_text


def prepare(article: SourceArticle) -> CleanedText:
    cleaned = clean_text(extract_text(article))
    if not cleaned.text.strip():
        raise PipelineError(
            "no_article_text",
            "Nothing of the article was left after removing boilerplate; send the article's text.",
        )
    return CleanedText(
        text=cleaned.text,
        chars_in=len(article.raw_text),
        chars_kept=cleaned.chars_kept,
        lines_removed=cleaned.lines_removed,
    )


def draft_summary(
    article: SourceArticle, text: str, settings: Settings
) -> tuple[Draft, Usage, str, str, str]:
    """The provider's draft and usage, with (provider, model, version) labels for the result."""
    if settings.provider == "extractive":
        draft = summarize_extractive(text, language=article.language)
        return draft, Usage(), "extractive", EXTRACTIVE_MODEL, EXTRACTIVE_VERSION
    draft, usage = summarize_with_llm(
        text,
        title=article.title,
        source=article.source,
        language=article.language,
        settings=settings,
    )
    return draft, usage, "openai", settings.model, PROMPT_VERSION


def ground(draft: Draft, text: str) -> tuple[list[ArgumentPointPublic], list[LoadedTerm]]:
    """Locate every quote and loaded term in the clean text; `verified` is ours, not the model's."""
    grounder = Grounder(text)
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
    terms, seen = [], set()
    for term in draft.loaded_language:
        span = find_term(text, term)
        if span is not None and span not in seen:
            seen.add(span)
            terms.append(LoadedTerm(term=text[span[0] : span[1]], start=span[0], end=span[1]))
    terms.sort(key=lambda t: t.start)
    return points, terms


def summarize_article(
    article: SourceArticle, settings: Settings
) -> tuple[CleanedText, ResultPublic]:
    """The whole pipeline on one article, without a database: what `evenhand summarize` runs."""
    cleaned = prepare(article)
    draft, usage, provider, model, version = draft_summary(article, cleaned.text, settings)
    points, terms = ground(draft, cleaned.text)
    quotes = [ev for point in points for ev in point.evidence]
    result = ResultPublic(
        article_type=draft.article_type,
        thesis=draft.thesis,
        summary=draft.summary,
        argument_points=points,
        loaded_language=terms,
        provider=provider,
        model=model,
        prompt_version=version,
        usage=UsagePublic(**usage.model_dump()),
        grounding=GroundingPublic(quotes=len(quotes), verified=sum(ev.verified for ev in quotes)),
        cleaning=CleaningPublic(
            chars_in=cleaned.chars_in,
            chars_kept=cleaned.chars_kept,
            lines_removed=cleaned.lines_removed,
        ),
    )
    return cleaned, result


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def store_result(session: Session, job: Job, result: ResultPublic, text_hash: str) -> bool:
    """Write the result and mark the job succeeded in one transaction.

    False (and nothing written) when the job is no longer running: canceled meanwhile, or a
    duplicate delivery already finished it. The unique job_id on `result` backs this up.
    """
    if not mark_succeeded(session, job.id):
        session.rollback()
        return False
    row = Result(
        job_id=job.id,
        article_id=job.article_id,
        content_hash=text_hash,
        article_type=result.article_type,
        thesis=result.thesis,
        summary=result.summary,
        loaded_language=[term.model_dump() for term in result.loaded_language],
        provider=result.provider,
        model=result.model,
        prompt_version=result.prompt_version,
        **result.usage.model_dump(),
        quotes=result.grounding.quotes,
        verified=result.grounding.verified,
        **result.cleaning.model_dump(),
    )
    session.add(row)
    session.flush()  # the result row first: points refer to it
    for position, point in enumerate(result.argument_points):
        point_row = ArgumentPoint(
            result_id=row.id,
            position=position,
            claim=point.claim,
            speaker=point.speaker,
            premises=point.premises,
        )
        session.add(point_row)
        session.flush()  # the point's id, for its evidence rows
        assert point_row.id is not None
        for ev_position, ev in enumerate(point.evidence):
            session.add(Evidence(point_id=point_row.id, position=ev_position, **ev.model_dump()))
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


def run_job(job_id: uuid.UUID, settings: Settings) -> None:
    """Run one job to `succeeded` or `failed`; a job that is not queued is left alone."""
    with session_scope() as session:
        if not claim_job(session, job_id):
            log.info("job_not_claimed")
            return
        job = session.get(Job, job_id)
        assert job is not None
        stored = session.get(Article, job.article_id)
        assert stored is not None
        article = SourceArticle(
            input_kind=stored.input_kind,
            raw_text=stored.raw_text,
            title=stored.title,
            source=stored.source,
            language=stored.language,
        )
        session.commit()  # end the read transaction: nothing is held while the LLM works
    log.info("job_started", provider=settings.provider)
    try:
        cleaned, result = summarize_article(article, settings)
        text_hash = content_hash(cleaned.text)
        with session_scope() as session:
            stored = session.get(Article, job.article_id)
            assert stored is not None
            stored.clean_text = cleaned.text
            stored.content_hash = text_hash
            session.add(stored)
            stored_ok = store_result(session, job, result, text_hash)
    except PipelineError as exc:
        with session_scope() as session:
            fail_job(session, job_id, exc.code, exc.message)
        log.warning("job_failed", code=exc.code)
        return
    except Exception as exc:
        log.exception("job_crashed", error=type(exc).__name__)
        with session_scope() as session:
            fail_job(
                session,
                job_id,
                "internal_error",
                "An internal error stopped the job; it has been logged.",
            )
        return
    log.info(
        "job_finished" if stored_ok else "job_result_discarded",
        quotes=result.grounding.quotes,
        verified=result.grounding.verified,
        llm_calls=result.usage.llm_calls,
    )
