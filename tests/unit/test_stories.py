"""The story comparison without services: matching (LLM answers repaired, lexical), quotes located
in their own articles, the synthesis's attributions, coverage and failed articles."""

import json
import uuid
from pathlib import Path

import pytest

from kernel.config import Settings
from kernel.models import JobStatus
from kernel.schemas import JobError, StoryOutlet, StoryResultPublic
from testkit.fake_llm import generate_answer
from worker.cleaning import clean_text
from worker.llm import Deadline, output_schema
from worker.schemas import parse_answer
from worker.stories import (
    SIMILARITY_THRESHOLD,
    Claim,
    StoryInput,
    StoryMatch,
    compare,
    match_lexically,
    negated,
    outlet_names,
    repair_matching,
)

STORIES = Path(__file__).parents[2] / "testkit" / "fixtures" / "stories"


def outlet(source: str | None, status: JobStatus = JobStatus.succeeded) -> StoryOutlet:
    error = (
        JobError(code="no_article_text", message="Nothing left.") if status == "failed" else None
    )
    return StoryOutlet(
        article_id=uuid.uuid4(),
        job_id=uuid.uuid4(),
        title=None,
        source=source,
        status=status,
        error=error,
    )


def test_repair_drops_invented_claim_numbers_duplicates_and_self_contradictions() -> None:
    answer = StoryMatch.model_validate(
        {
            "clusters": [
                {"claim": "Both say the plan costs 4.2 million euros.", "members": [0, 2, 2, 9]},
                {"claim": "Nothing real.", "members": [-1, 17]},
                {"claim": "Claim 2 again.", "members": [2, 3]},
            ],
            "contradictions": [
                {"first": 0, "second": 0, "explanation": "itself"},
                {"first": 0, "second": 1, "explanation": "a cluster that was dropped"},
                {"first": 0, "second": 2, "explanation": "real"},
                {"first": 2, "second": 0, "explanation": "the same pair again"},
                {"first": 5, "second": 0, "explanation": "no such cluster"},
            ],
        }
    )
    matching = repair_matching(answer, claims=5)
    # 9, -1 and 17 do not exist; 2 stays in its first cluster; 1 and 4 were left out
    assert matching.groups == [[0, 2], [3], [1], [4]]
    assert matching.contradictions == [(0, 1, "real")]
    assert matching.wordings[0] == "Both say the plan costs 4.2 million euros."


def test_the_llm_stand_ins_generic_answer_parses_and_is_repaired() -> None:
    content = json.dumps(
        generate_answer(output_schema(StoryMatch), "The council voted. It rained.")
    )
    matching = repair_matching(parse_answer(content, StoryMatch), claims=3)
    assert sorted(i for group in matching.groups for i in group) == [0, 1, 2]
    assert all(a != b for a, b, _ in matching.contradictions)


def test_lexical_matching_joins_paraphrases_and_opposes_negations() -> None:
    claims = [
        Claim(0, "The plan will cost 4.2 million euros over three years.", "the budget office", []),
        Claim(0, "The pilot increased sales for Main Street shops.", "the mayor", []),
        Claim(1, "The cost of 4.2 million euros is modest.", "the author", []),
        Claim(
            2, "The summer pilot did not increase sales for Main Street shops.", "the author", []
        ),
        Claim(2, "Harbor City should not stop at six blocks.", "the author", []),
    ]
    matching = match_lexically(claims)
    assert [0, 2] in matching.groups
    sales, no_sales = (next(g for g, m in enumerate(matching.groups) if i in m) for i in (1, 3))
    assert sales != no_sales
    assert [(a, b) for a, b, _ in matching.contradictions] == [(sales, no_sales)]
    assert [4] in matching.groups
    assert 0 < SIMILARITY_THRESHOLD < 100


def test_lexical_matching_never_joins_claims_of_one_article() -> None:
    claims = [
        Claim(0, "The toll is too high.", "a", []),
        Claim(0, "The toll is too high.", "b", []),
    ]
    assert match_lexically(claims).groups == [[0], [1]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("The pilot did not work.", True), ("It won't work.", True), ("It is not never.", False)],
)
def test_negation(text: str, expected: bool) -> None:
    assert negated(text) is expected


def test_outlets_sharing_a_name_are_told_apart() -> None:
    names = outlet_names([outlet("Gazette"), outlet("Gazette"), outlet(None)])
    assert names == ["Gazette (article 1)", "Gazette (article 2)", "article 3"]


def story_inputs() -> list[StoryInput]:
    texts = {
        name: clean_text((STORIES / f"{name}.txt").read_text()).text
        for name in ("news_report", "opinion_for", "opinion_against")
    }
    news = StoryInput(outlet("Harbor Gazette"), texts["news_report"])
    news.points = [
        (
            "The plan will cost 4.2 million euros over three years.",
            "the city's budget office",
            ["The plan will cost 4.2 million euros over three years"],
        ),
        ("Buses will move to Harbor Road.", "the transport department", ["an invented quote"]),
    ]
    pro = StoryInput(outlet("City Voice"), texts["opinion_for"])
    pro.points = [
        ("The cost of 4.2 million euros is modest.", "the author", ["The cost of 4.2 million"]),
        (
            "The pilot increased sales for Main Street shops.",
            "the author",
            ["The pilot increased sales for Main Street shops."],
        ),
    ]
    con = StoryInput(outlet("Keller's Column"), texts["opinion_against"])
    con.points = [
        (
            "The summer pilot did not increase sales for Main Street shops.",
            "the author",
            ["The summer pilot did not increase sales for Main Street shops."],
        )
    ]
    failed = StoryInput(outlet("Example Blog", JobStatus.failed), None)
    return [news, pro, con, failed]


def test_offline_comparison_of_the_fixture_story() -> None:
    inputs = story_inputs()
    result = compare(inputs, Settings(provider="extractive"), Deadline(10))
    StoryResultPublic.model_validate(result.model_dump(mode="json"))
    assert (result.method, result.similarity_threshold) == ("lexical", SIMILARITY_THRESHOLD)
    news, pro, con, failed = (item.outlet.article_id for item in inputs)
    cost = result.clusters[0]
    assert cost.article_ids == [news, pro]
    assert result.shared == [cost.id]
    assert len(result.unique) == len(result.clusters) - 1
    # every quote located in its own article's clean text
    for cluster in result.clusters:
        for member in cluster.members:
            text = next(i.clean_text for i in inputs if i.outlet.article_id == member.article_id)
            assert text is not None
            for quote in member.quotes:
                assert quote.article_id == member.article_id
                if quote.verified:
                    assert text[quote.start : quote.end] == quote.quote.strip()
    assert (result.grounding.quotes, result.grounding.verified) == (5, 4)
    [contradiction] = result.contradictions
    assert contradiction.article_ids == [pro, con]
    # coverage: analysed outlets only; a blindspot is a cluster others make and it does not
    coverage = {c.article_id: c for c in result.coverage}
    assert set(coverage) == {news, pro, con}
    assert cost.id in coverage[news].covers and cost.id in coverage[con].blindspots
    assert [f.article_id for f in result.failed] == [failed]
    synthesis = result.synthesis
    assert "According to Harbor Gazette and City Voice, the plan will cost 4.2 million" in synthesis
    assert "Harbor Gazette reports: Buses will move to Harbor Road." in synthesis
    assert "The outlets disagree: according to City Voice, the pilot increased sales" in synthesis
    assert "according to Keller's Column, the summer pilot did not increase sales" in synthesis
    assert "Example Blog could not be analysed (no_article_text)." in synthesis


def test_a_story_without_claims_says_so() -> None:
    inputs = [StoryInput(outlet("A", JobStatus.failed), None), StoryInput(outlet("B"), "Text.")]
    result = compare(inputs, Settings(provider="extractive"), Deadline(10))
    assert result.clusters == [] and result.usage.llm_calls == 0
    assert result.synthesis.startswith("No article of the story yielded a claim to compare.")
