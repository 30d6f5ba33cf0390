"""The summarization pipeline: load -> (fetch) -> clean -> summarize -> ground -> store.

Callable without Celery (`evenhand summarize`, `evenhand eval`, tests); the Celery task is a thin
wrapper around `run_job`. No database session is held while the LLM is working.
"""

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
import structlog
import trafilatura
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from kernel.config import Settings
from kernel.db import autocommit_scope, session_scope
from kernel.events import announce_job
from kernel.jobs import Claim, claim_job, fail_job, load_result, mark_succeeded
from kernel.metrics import JOBS_FINISHED
from kernel.models import ArgumentPoint, Article, Evidence, Job, Result, utcnow
from kernel.schemas import (
    ArgumentPointPublic,
    CleaningPublic,
    EvidencePublic,
    GroundingPublic,
    LoadedTerm,
    NeutralityPublic,
    ResultPublic,
    UsagePublic,
)
from worker.chunking import estimate_tokens, split_into_chunks
from worker.cleaning import CleanedText, clean_text
from worker.errors import PipelineError
from worker.extractive import summarize_extractive
from worker.fetch import FetchPolicy, fetch_article
from worker.grounding import Grounder
from worker.lease import LeaseKeeper
from worker.llm import Conversation, Deadline, get_llm
from worker.neutrality import TermScan, unattributed_loaded_terms
from worker.prompts import (
    PROMPT_VERSION,
    build_map_messages,
    build_messages,
    build_reduce_messages,
)
from worker.sanitize import strip_foreign_links
from worker.schemas import Draft, DraftPoint, MapDraft, ReduceDraft, Usage

log = structlog.get_logger(__name__)

EXTRACTIVE_MODEL = "textrank"
EXTRACTIVE_VERSION = "extractive-v1"


@dataclass(frozen=True)
class SourceArticle:
    """What the pipeline needs of an article, detached from any database session."""

    input_kind: str  # text | html | url
    raw_text: str
    url: str | None = None
    title: str | None = None
    source: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Prepared:
    cleaned: CleanedText
    fetched: str | None  # the page fetched for URL input, kept as the article's raw text


@dataclass(frozen=True)
class Labels:
    provider: str
    model: str
    prompt_version: str


# --- input ----------------------------------------------------------------------------------------


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        timeout=settings.fetch_timeout,
        max_bytes=settings.fetch_max_bytes,
        allow_private=settings.fetch_allow_private,
    )


def extract_text(kind: str, raw: str) -> str:
    """The article's text, with an HTML page reduced to its main content (trafilatura)."""
    if kind == "html":
        extracted = trafilatura.extract(
            raw, include_comments=False, include_tables=False, favor_precision=True
        )
        return extracted or ""
    return raw


def prepare(article: SourceArticle, settings: Settings) -> Prepared:
    kind, raw, fetched = article.input_kind, article.raw_text, None
    if kind == "url":
        assert article.url is not None
        page = fetch_article(article.url, fetch_policy(settings))
        raw = fetched = page.text
        kind = "text" if page.content_type == "text/plain" else "html"
    cleaned = clean_text(extract_text(kind, raw))
    if not cleaned.text.strip():
        raise PipelineError(
            "no_article_text",
            "Nothing of the article was left after removing boilerplate; send the article's text.",
        )
    figures = CleanedText(
        text=cleaned.text,
        chars_in=len(raw),
        chars_kept=cleaned.chars_kept,
        lines_removed=cleaned.lines_removed,
    )
    return Prepared(cleaned=figures, fetched=fetched)


def cleaning_figures(cleaned: CleanedText) -> CleaningPublic:
    return CleaningPublic(
        chars_in=cleaned.chars_in,
        chars_kept=cleaned.chars_kept,
        lines_removed=cleaned.lines_removed,
    )


def labels(settings: Settings) -> Labels:
    if settings.provider == "extractive":
        return Labels("extractive", EXTRACTIVE_MODEL, EXTRACTIVE_VERSION)
    return Labels("openai", settings.model, PROMPT_VERSION)


# --- the LLM path ---------------------------------------------------------------------------------


def _quotes(points: list[DraftPoint]) -> list[str]:
    return [ev.quote for point in points for ev in point.evidence]


def _verified(points: list[DraftPoint], grounder: Grounder) -> int:
    return sum(grounder.locate(quote).verified for quote in _quotes(points))


def repair_quotes(conversation: Conversation, answer, grounder: Grounder):  # type: ignore[no-untyped-def]
    """One round asking for verbatim quotes when some do not occur in the text."""
    unverified = [q for q in _quotes(answer.argument_points) if not grounder.locate(q).verified]
    if not unverified:
        return answer
    listing = "\n".join(f"- {quote[:300]}" for quote in unverified[:20])
    revised = conversation.revise(
        "These evidence quotes do not occur in the article word for word:\n"
        f"{listing}\n"
        "Answer again with the same JSON, replacing each of them with a quote copied character "
        "for character from the article."
    )
    if revised is not None and _verified(revised.argument_points, grounder) > _verified(
        answer.argument_points, grounder
    ):
        return revised
    return answer


def repair_wording(conversation: Conversation, answer, source_terms: list[str]):  # type: ignore[no-untyped-def]
    """One round asking for neutral wording when the summary uses loaded terms unattributed."""
    issues = unattributed_loaded_terms(answer.summary, source_terms)
    if not issues:
        return answer
    words = ", ".join(sorted({issue.term for issue in issues}))
    revised = conversation.revise(
        f"The summary uses loaded words outside quotation or attributed speech: {words}. "
        "Answer again with the same JSON, with a summary in neutral words that attributes every "
        "judgement to its holder."
    )
    if revised is not None and len(unattributed_loaded_terms(revised.summary, source_terms)) < len(
        issues
    ):
        return revised
    return answer


def merge_points(points: list[DraftPoint], groups: list[list[int]]) -> list[DraftPoint]:
    """Points the reduce step found to be duplicates become one, keeping all their evidence."""
    merged_into: dict[int, int] = {}
    for group in groups:
        members = [i for i in dict.fromkeys(group) if 0 <= i < len(points) and i not in merged_into]
        for member in members:
            merged_into[member] = members[0]
    merged: dict[int, DraftPoint] = {}
    for index, point in enumerate(points):
        target = merged_into.get(index, index)
        if target not in merged:
            merged[target] = point.model_copy(deep=True)
            continue
        keep = merged[target]
        seen = {ev.quote for ev in keep.evidence}
        keep.evidence += [ev for ev in point.evidence if ev.quote not in seen]
        keep.premises += [p for p in point.premises if p not in keep.premises]
    return [merged[i] for i in sorted(merged)]


def draft_with_llm(
    article: SourceArticle,
    text: str,
    grounder: Grounder,
    source_terms: list[str],
    settings: Settings,
    deadline: Deadline,
) -> tuple[Draft, Usage]:
    llm = get_llm(settings)
    usage = Usage()
    meta = {"title": article.title, "source": article.source, "language": article.language}
    if estimate_tokens(text) <= settings.token_budget:
        conversation = Conversation(
            llm, build_messages(text, **meta), Draft, article.language, deadline
        )
        draft = conversation.ask()
        draft = repair_quotes(conversation, draft, grounder)
        draft = repair_wording(conversation, draft, source_terms)
        return draft, usage.add(conversation.usage)
    # Map-reduce: argument points with quotes per part, then one call for the whole.
    chunks = split_into_chunks(text, settings.token_budget, settings.chunk_overlap_tokens)
    log.info("map_reduce", chunks=len(chunks))
    points: list[DraftPoint] = []
    terms: list[str] = []
    for chunk in chunks:
        messages = build_map_messages(chunk.text, part=chunk.index + 1, parts=len(chunks), **meta)
        conversation = Conversation(llm, messages, MapDraft, article.language, deadline)
        mapped = repair_quotes(conversation, conversation.ask(), grounder)
        usage.add(conversation.usage)
        points += mapped.argument_points
        terms += mapped.loaded_language
    lines = [f"[{i}] {p.speaker}: {p.claim}".replace("\n", " ") for i, p in enumerate(points)]
    conversation = Conversation(
        llm, build_reduce_messages(lines, **meta), ReduceDraft, article.language, deadline
    )
    reduced = repair_wording(conversation, conversation.ask(), source_terms)
    usage.add(conversation.usage)
    # model_construct: the parts were validated one by one; together they may hold more points
    # than one answer is allowed to
    draft = Draft.model_construct(
        article_type=reduced.article_type,
        thesis=reduced.thesis,
        summary=reduced.summary,
        argument_points=merge_points(points, [g.points for g in reduced.duplicate_groups]),
        loaded_language=list(dict.fromkeys(terms)),
    )
    return draft, usage


# --- grounding and the result ---------------------------------------------------------------------


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


def analyse(
    article: SourceArticle,
    cleaned: CleanedText,
    settings: Settings,
    deadline: Deadline | None = None,
) -> ResultPublic:
    """Summary, argument points, grounding and the neutrality check of one clean text."""
    text = cleaned.text
    grounder = Grounder(text)
    scan = TermScan(text)  # tokenised once: the lexicon's terms now, the model's added below
    lexicon_terms = [span.term for span in scan.terms()]
    label = labels(settings)
    if label.provider == "extractive":
        draft, usage = summarize_extractive(text, language=article.language), Usage()
    else:
        deadline = deadline or Deadline(settings.job_time_limit)
        draft, usage = draft_with_llm(article, text, grounder, lexicon_terms, settings, deadline)
    draft = without_foreign_links(draft, text)
    points = ground_points(draft, grounder)
    quotes = [ev for point in points for ev in point.evidence]
    # the source's loaded terms: the lexicon's plus the model's own list, each found in the text
    source_terms = scan.terms(extra_terms=draft.loaded_language)
    leftover = unattributed_loaded_terms(draft.summary, [t.term for t in source_terms])
    return ResultPublic(
        article_type=draft.article_type,
        thesis=draft.thesis,
        summary=draft.summary,
        argument_points=points,
        loaded_language=[LoadedTerm(term=t.term, start=t.start, end=t.end) for t in source_terms],
        provider=label.provider,
        model=label.model,
        prompt_version=label.prompt_version,
        usage=UsagePublic(**usage.model_dump()),
        grounding=GroundingPublic(quotes=len(quotes), verified=sum(ev.verified for ev in quotes)),
        cleaning=cleaning_figures(cleaned),
        neutrality=NeutralityPublic(
            summary_loaded_terms=[
                LoadedTerm(term=i.term, start=i.start, end=i.end) for i in leftover
            ]
        ),
    )


def summarize_article(article: SourceArticle, settings: Settings) -> ResultPublic:
    """The whole pipeline on one article, without a database: what `evenhand summarize` runs."""
    return analyse(article, prepare(article, settings).cleaned, settings)


# --- storage --------------------------------------------------------------------------------------


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# The statements of every job, built once with bind parameters: building a statement and its
# cache key cost more CPU than executing it. Core rather than the ORM: nothing a job reads is
# changed through a session, and the ORM's load and unit-of-work paths cost more CPU than the
# statements.
_LOAD_JOB = (
    sa.select(
        Job.article_id,
        Job.callback_url,
        Article.input_kind,
        Article.raw_text,
        Article.url,
        Article.title,
        Article.source,
        Article.language,
    )
    .join_from(Job, Article, col(Article.id) == col(Job.article_id))
    .where(col(Job.id) == sa.bindparam("job_id"))
)
# SET: the columns given with the statement's parameters (clean_text, content_hash, raw_text)
_UPDATE_ARTICLE = sa.update(Article).where(col(Article.id) == sa.bindparam("article"))
_REUSABLE_RESULT = (
    sa.select(Result.id)
    .where(
        col(Result.content_hash) == sa.bindparam("text_hash"),
        col(Result.provider) == sa.bindparam("label_provider"),
        col(Result.model) == sa.bindparam("label_model"),
        col(Result.prompt_version) == sa.bindparam("label_prompt_version"),
    )
    .order_by(col(Result.created_at))
    .limit(1)
)
_INSERT_RESULT = sa.insert(Result)
_INSERT_POINTS = sa.insert(ArgumentPoint).returning(ArgumentPoint.id, sort_by_parameter_order=True)
_INSERT_EVIDENCE = sa.insert(Evidence)


def reusable_result(session: Session, text_hash: str, label: Labels) -> ResultPublic | None:
    """A stored result for the same clean text, provider, model and prompt version."""
    # the id alone first: almost every lookup finds nothing
    params = {
        "text_hash": text_hash,
        "label_provider": label.provider,
        "label_model": label.model,
        "label_prompt_version": label.prompt_version,
    }
    result_id = session.connection().execute(_REUSABLE_RESULT, params).scalar()
    if result_id is None:
        return None
    row = session.get(Result, result_id)
    return load_result(session, row) if row is not None else None


def store_result(
    session: Session, claim: Claim, article_id: uuid.UUID, result: ResultPublic, text_hash: str
) -> bool:
    """Write the result and mark the job succeeded in one transaction.

    False (and nothing written) when the job is no longer running: canceled meanwhile, or a
    duplicate delivery already finished it. The unique job_id on `result` backs this up.
    """
    if not mark_succeeded(session, claim):
        session.rollback()
        return False
    # A result has dozens of rows: on PostgreSQL points and evidence are one multi-row statement
    # each (SQLite gets one statement per point, in order).
    result_id = uuid.uuid4()
    connection = session.connection()
    connection.execute(
        _INSERT_RESULT,
        {
            "id": result_id,
            "job_id": claim.job_id,
            "article_id": article_id,
            "content_hash": text_hash,
            "article_type": result.article_type,
            "thesis": result.thesis,
            "summary": result.summary,
            "loaded_language": [term.model_dump() for term in result.loaded_language],
            "summary_loaded_terms": [
                t.model_dump() for t in result.neutrality.summary_loaded_terms
            ],
            "provider": result.provider,
            "model": result.model,
            "prompt_version": result.prompt_version,
            **result.usage.model_dump(),
            "quotes": result.grounding.quotes,
            "verified": result.grounding.verified,
            **result.cleaning.model_dump(),
            "created_at": utcnow(),
        },
    )
    if result.argument_points:
        point_ids = connection.scalars(
            _INSERT_POINTS,
            [
                {
                    "result_id": result_id,
                    "position": position,
                    "claim": point.claim,
                    "speaker": point.speaker,
                    "premises": point.premises,
                }
                for position, point in enumerate(result.argument_points)
            ],
        ).all()
        evidence = [
            {"point_id": point_id, "position": ev_position, **ev.model_dump()}
            for point_id, point in zip(point_ids, result.argument_points, strict=True)
            for ev_position, ev in enumerate(point.evidence)
        ]
        if evidence:
            connection.execute(_INSERT_EVIDENCE, evidence)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        return False
    return True


@dataclass(frozen=True)
class ClaimedJob:
    """What a run needs of the job it claimed, detached from any database session."""

    claim: Claim
    article_id: uuid.UUID
    callback_url: str | None
    article: SourceArticle


def _load_claimed(job_id: uuid.UUID, settings: Settings, task_id: str | None) -> ClaimedJob | None:
    # no transaction: the claim is one atomic UPDATE, and nothing is held while the LLM works
    with autocommit_scope() as session:
        claim = claim_job(
            session,
            job_id,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.max_attempts,
            task_id=task_id,
        )
        if claim is None:
            return None
        row = session.connection().execute(_LOAD_JOB, {"job_id": job_id}).one()
    article = SourceArticle(
        input_kind=row.input_kind,
        raw_text=row.raw_text,
        url=row.url,
        title=row.title,
        source=row.source,
        language=row.language,
    )
    return ClaimedJob(claim, row.article_id, row.callback_url, article)


def _produce(job: ClaimedJob, settings: Settings, deadline: Deadline) -> tuple[ResultPublic, str]:
    article = job.article
    prepared = prepare(article, settings)
    text_hash = content_hash(prepared.cleaned.text)
    cleaned: dict[str, Any] = {
        "article": job.article_id,
        "clean_text": prepared.cleaned.text,
        "content_hash": text_hash,
    }
    if prepared.fetched is not None:
        cleaned["raw_text"] = prepared.fetched
    with autocommit_scope() as session:
        session.connection().execute(_UPDATE_ARTICLE, cleaned)
        reused = reusable_result(session, text_hash, labels(settings))
    if reused is not None:
        # the same clean text through the same provider, model and prompt: no LLM call
        log.info("result_reused")
        cleaning = cleaning_figures(prepared.cleaned)
        usage = UsagePublic(prompt_tokens=0, completion_tokens=0, llm_calls=0)
        return reused.model_copy(update={"cleaning": cleaning, "usage": usage}), text_hash
    return analyse(article, prepared.cleaned, settings, deadline), text_hash


def run_job(
    job_id: uuid.UUID, settings: Settings, leases: LeaseKeeper, task_id: str | None = None
) -> bool:
    """Run one job to `succeeded` or `failed`, its lease kept by `leases`; True when this run
    ended it and it has a callback URL (its webhook is due). A job that cannot be claimed
    (finished, canceled, held by a live worker, a duplicate delivery) is left alone."""
    try:
        job = _load_claimed(job_id, settings, task_id)
    finally:
        # now running; or not claimed, usually a duplicate delivery, but the claim may have
        # failed the job for too many attempts; or claimed and then the read failed: either
        # way its waiters read it again
        announce_job(settings, job_id)
    if job is None:
        log.info("job_not_claimed")
        return False
    log.info("job_started", provider=settings.provider, attempt=job.claim.attempt)
    try:
        return _run_claimed(job, settings, leases)
    finally:
        # finished, or given up to a canceler or another worker: either way, waiters read again
        announce_job(settings, job_id)


def _run_claimed(job: ClaimedJob, settings: Settings, leases: LeaseKeeper) -> bool:
    claim = job.claim
    with leases.hold(claim, settings.job_lease_seconds) as lost:
        deadline = Deadline(settings.job_time_limit, lost)
        try:
            result, text_hash = _produce(job, settings, deadline)
            with session_scope() as session:
                stored_ok = store_result(session, claim, job.article_id, result, text_hash)
        except PipelineError as exc:
            with autocommit_scope() as session:
                ended = fail_job(session, claim, exc.code, exc.message)
            if ended:
                JOBS_FINISHED.labels("failed", exc.code).inc()
            log.warning("job_failed", code=exc.code)
            return ended and job.callback_url is not None
        except Exception as exc:
            log.exception("job_crashed", error=type(exc).__name__)
            with autocommit_scope() as session:
                ended = fail_job(
                    session,
                    claim,
                    "internal_error",
                    "An internal error stopped the job; it has been logged.",
                )
            if ended:
                JOBS_FINISHED.labels("failed", "internal_error").inc()
            return ended and job.callback_url is not None
    if stored_ok:
        JOBS_FINISHED.labels("succeeded", "").inc()
    log.info(
        "job_finished" if stored_ok else "job_result_discarded",
        quotes=result.grounding.quotes,
        verified=result.grounding.verified,
        llm_calls=result.usage.llm_calls,
    )
    return stored_ok and job.callback_url is not None
