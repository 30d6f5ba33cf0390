"""Each stage of the pipeline called on its own: prepare, draft, ground, check, assemble (store is
in test_jobs.py)."""

import pytest

from kernel.config import Settings
from worker.drafting import draft, labels
from worker.errors import PipelineError
from worker.grounding import Grounder
from worker.neutrality import TermScan
from worker.pipeline import analyse, assemble, check, ground
from worker.prepare import SourceArticle, prepare
from worker.schemas import Draft, DraftEvidence, DraftPoint, Usage

TEXT = (
    "The council voted on Tuesday to close the Elm Street library.\n"
    "Advertisement\n"
    "Critics called the decision a reckless disgrace. The mayor said the branch costs too much "
    "to run because few people use it.\n"
    "Story continues below\n"
    "Parents plan to protest outside City Hall next week.\n"
)
OFFLINE = Settings(provider="extractive")
ARTICLE = SourceArticle(input_kind="text", raw_text=TEXT)


def test_prepare_removes_boilerplate_and_keeps_the_article() -> None:
    prepared = prepare(ARTICLE, OFFLINE)
    assert "Advertisement" not in prepared.cleaned.text
    assert "Story continues below" not in prepared.cleaned.text
    assert "Parents plan to protest outside City Hall next week." in prepared.cleaned.text
    assert prepared.cleaned.lines_removed == 2 and prepared.cleaned.chars_in == len(TEXT)


def test_prepare_fails_clearly_when_nothing_is_left() -> None:
    with pytest.raises(PipelineError) as failed:
        prepare(SourceArticle(input_kind="text", raw_text="Advertisement\n"), OFFLINE)
    assert failed.value.code == "no_article_text"


def test_draft_offline_quotes_the_article() -> None:
    text = prepare(ARTICLE, OFFLINE).cleaned.text
    drafted, usage = draft(ARTICLE, text, Grounder(text), [], OFFLINE)
    assert drafted.summary and drafted.thesis
    assert usage.llm_calls == 0
    quotes = [ev.quote for point in drafted.argument_points for ev in point.evidence]
    assert quotes and all(quote in text for quote in quotes)


def _draft(quotes: list[str], summary: str = "The council voted to close a library.") -> Draft:
    return Draft(
        article_type="news",
        thesis="The council voted to close the library.",
        summary=summary,
        argument_points=[
            DraftPoint(
                claim="The branch costs too much.",
                speaker="the mayor",
                premises=[],
                evidence=[DraftEvidence(quote=q) for q in quotes],
            )
        ],
        loaded_language=["disgrace"],
    )


def test_ground_locates_quotes_and_never_trusts_the_drafter() -> None:
    text = prepare(ARTICLE, OFFLINE).cleaned.text
    real, invented = "the branch costs too much to run", "the branch is a money pit"
    drafted, points = ground(_draft([real, invented]), Grounder(text))
    located, missing = points[0].evidence
    assert located.verified and text[located.start : located.end] == real
    assert not missing.verified
    assert drafted.argument_points[0].claim == "The branch costs too much."


def test_ground_drops_links_the_article_does_not_contain() -> None:
    text = prepare(ARTICLE, OFFLINE).cleaned.text
    drafted, _ = ground(
        _draft([], summary="A library closes. ![x](https://tracker.example/p.png)"),
        Grounder(text),
    )
    assert "tracker.example" not in drafted.summary


def test_check_finds_an_unattributed_loaded_term_in_the_summary() -> None:
    text = prepare(ARTICLE, OFFLINE).cleaned.text
    neutral = check(_draft([]), TermScan(text))
    loaded = check(_draft([], summary="The council's decision was a disgrace."), TermScan(text))
    assert "disgrace" in [t.term for t in neutral.source_terms]
    assert neutral.summary_loaded_terms == []
    assert [t.term for t in loaded.summary_loaded_terms] == ["disgrace"]


def test_assemble_counts_what_grounding_found() -> None:
    prepared = prepare(ARTICLE, OFFLINE)
    text = prepared.cleaned.text
    drafted, points = ground(
        _draft(["the branch costs too much to run", "no such words"]), Grounder(text)
    )
    result = assemble(
        drafted, points, check(drafted, TermScan(text)), labels(OFFLINE), Usage(), prepared.cleaned
    )
    assert (result.grounding.quotes, result.grounding.verified) == (2, 1)
    assert result.provider == "extractive" and result.cleaning.lines_removed == 2


def test_the_stages_in_order_give_the_whole_result() -> None:
    prepared = prepare(ARTICLE, OFFLINE)
    result = analyse(ARTICLE, prepared.cleaned, OFFLINE)
    assert result.grounding.quotes == result.grounding.verified > 0
    # the offline provider judges no quote's support: not judged, never a made-up verdict
    evidence = [ev for point in result.argument_points for ev in point.evidence]
    assert evidence and all(ev.support is None for ev in evidence)
    assert result.grounding.supports == result.grounding.partial == result.grounding.unrelated == 0
