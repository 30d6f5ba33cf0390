"""The draft stage: what the article says, its argument points with the quotes the drafter chose,
and its loaded terms, from the configured provider (an LLM, or the offline extractive one)."""

from dataclasses import dataclass
from typing import TypeVar

import structlog

from kernel.config import Settings
from worker.chunking import estimate_tokens, split_into_chunks
from worker.extractive import summarize_extractive
from worker.grounding import Grounder
from worker.llm import AwaitingAnswers, Conversation, Deadline, get_llm
from worker.neutrality import unattributed_loaded_terms
from worker.prepare import SourceArticle
from worker.prompts import (
    PROMPT_VERSION,
    build_map_messages,
    build_messages,
    build_reduce_messages,
)
from worker.schemas import Draft, DraftPoint, MapDraft, ReduceDraft, Usage

log = structlog.get_logger(__name__)

# what a repair round takes and gives back: a whole draft, or a map or reduce step's answer
WithPoints = TypeVar("WithPoints", Draft, MapDraft)
WithSummary = TypeVar("WithSummary", Draft, ReduceDraft)

EXTRACTIVE_MODEL = "textrank"
EXTRACTIVE_VERSION = "extractive-v2"


@dataclass(frozen=True)
class Labels:
    """Which drafter made a result: stored with it, and the key under which it is reused."""

    provider: str
    model: str
    prompt_version: str


def labels(settings: Settings) -> Labels:
    if settings.provider == "extractive":
        return Labels("extractive", EXTRACTIVE_MODEL, EXTRACTIVE_VERSION)
    return Labels("openai", settings.model, PROMPT_VERSION)


def draft(
    article: SourceArticle,
    text: str,
    grounder: Grounder,
    source_terms: list[str],
    settings: Settings,
    deadline: Deadline | None = None,
) -> tuple[Draft, Usage]:
    """The draft of one clean text from the configured provider, with the tokens it used."""
    if labels(settings).provider == "extractive":
        return summarize_extractive(text, language=article.language), Usage()
    deadline = deadline or Deadline(settings.job_time_limit)
    return draft_with_llm(article, text, grounder, source_terms, settings, deadline)


# --- the LLM path ---------------------------------------------------------------------------------


def _quotes(points: list[DraftPoint]) -> list[str]:
    return [ev.quote for point in points for ev in point.evidence]


def _verified(points: list[DraftPoint], grounder: Grounder) -> int:
    return sum(grounder.locate(quote).verified for quote in _quotes(points))


def repair_quotes(conversation: Conversation, answer: WithPoints, grounder: Grounder) -> WithPoints:
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


def repair_wording(
    conversation: Conversation, answer: WithSummary, source_terms: list[str]
) -> WithSummary:
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
    defaulted: list[str] = []  # fields the map and reduce answers left out
    awaiting = False
    for chunk in chunks:
        messages = build_map_messages(chunk.text, part=chunk.index + 1, parts=len(chunks), **meta)
        conversation = Conversation(llm, messages, MapDraft, article.language, deadline)
        try:
            mapped = repair_quotes(conversation, conversation.ask(), grounder)
        except AwaitingAnswers:
            # provider_batch mode: the parts are independent, so one round asks for them all
            awaiting = True
            continue
        usage.add(conversation.usage)
        points += mapped.argument_points
        terms += mapped.loaded_language
        defaulted += mapped.defaulted
    if awaiting:
        raise AwaitingAnswers()
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
    draft.mark_defaulted(*defaulted, *reduced.defaulted)
    return draft, usage
