"""The support check: does each verified quote support the claim it is evidence for?

One schema-bound LLM call per article: the claims go in with their verified quotes, a verdict per
quote comes out (`supports`, `partial`, `unrelated`). Quotes that did not verify are not judged,
nor is anything when the provider is the offline one: their verdict stays `None` (not judged),
never a guess.
"""

from typing import Literal

import structlog

from kernel.schemas import ArgumentPointPublic
from worker.errors import PipelineError
from worker.llm import LLM, Conversation, Deadline
from worker.prompts import build_support_messages
from worker.schemas import Answer, Usage

log = structlog.get_logger(__name__)

Verdict = Literal["supports", "partial", "unrelated"]


class QuoteVerdict(Answer):
    id: str  # "n.m": the m-th quote of the n-th claim, as listed
    verdict: Verdict


class SupportAnswer(Answer):
    verdicts: list[QuoteVerdict]


def support_listing(points: list[ArgumentPointPublic]) -> tuple[str, dict[str, tuple[int, int]]]:
    """The claims with their verified quotes, one per line, and where each quote id points."""
    lines, ids = [], {}
    for p, point in enumerate(points, 1):
        quotes = [(q, ev) for q, ev in enumerate(point.evidence, 1) if ev.verified]
        if not quotes:
            continue
        lines.append(f"[{p}] {point.speaker}: {point.claim}".replace("\n", " "))
        for q, ev in quotes:
            ids[f"{p}.{q}"] = (p - 1, q - 1)
            lines.append(f"  [{p}.{q}] {ev.quote}".replace("\n", " "))
    return "\n".join(lines), ids


def judge_support(
    points: list[ArgumentPointPublic],
    llm: LLM,
    deadline: Deadline,
    *,
    title: str | None = None,
    source: str | None = None,
    language: str | None = None,
) -> tuple[list[ArgumentPointPublic], Usage]:
    """The points with a verdict on each verified quote, and the tokens the check used. When the
    check fails, the quotes stay not judged and the job goes on: its summary does not depend on
    it."""
    listing, ids = support_listing(points)
    if not ids:
        return points, Usage()
    messages = build_support_messages(listing, title=title, source=source, language=language)
    conversation = Conversation(llm, messages, SupportAnswer, language, deadline)
    try:
        answer: SupportAnswer = conversation.ask()
    except PipelineError as exc:
        log.warning("support_check_failed", code=exc.code)
        return points, conversation.usage
    judged = [point.model_copy(deep=True) for point in points]
    for (p, q), verdict in read_verdicts(answer.verdicts, ids).items():
        judged[p].evidence[q].support = verdict
    return judged, conversation.usage


def read_verdicts(
    verdicts: list[QuoteVerdict], ids: dict[str, tuple[int, int]]
) -> dict[tuple[int, int], Verdict]:
    """Each judged quote's verdict, by where the quote is. A quote is named by its id ("n.m"). A
    bare claim number ("n"), which small models give, names the claim's quote only when the
    claim has exactly one: then there is no doubt which quote was judged. A quote given two
    different verdicts stays not judged."""
    quotes_of: dict[str, list[str]] = {}
    for quote_id in ids:
        quotes_of.setdefault(quote_id.split(".")[0], []).append(quote_id)
    given: dict[str, set[Verdict]] = {}
    for item in verdicts:
        named = item.id.strip().strip("[]").strip()
        if named not in ids:
            only = quotes_of.get(named, [])
            if len(only) != 1:
                continue
            named = only[0]
        given.setdefault(named, set()).add(item.verdict)
    return {ids[quote_id]: next(iter(v)) for quote_id, v in given.items() if len(v) == 1}
