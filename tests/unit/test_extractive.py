"""Tests for the offline extractive provider (TextRank summary + cue-based argument points)."""

import time

import sentencex
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.extractive import summarize_extractive
from worker.schemas import Draft

OPINION = (
    "Our city should stop subsidising parking garages. "
    "I believe the money would do far more good in buses and bike lanes. "
    "Every garage we build invites more cars into a downtown that is already choking on "
    "traffic. "
    "Because parking is free, drivers circle the blocks and clog the streets. "
    "The council spent twelve million on the last garage, and it sits half empty on "
    "weekdays. "
    "Clearly, that money could have bought a dozen new buses. "
    "Some merchants worry that customers will stay away. "
    "However, studies of other towns show that shoppers who arrive on foot spend more per "
    "month. "
    "It is time for the council to admit that the garage era is over. "
    "We must put people before parking, because streets are for people."
)

NEWS = (
    "The city council voted on Tuesday to close the Elm Street garage by next spring. "
    '"The garage loses money every single month," said Maria Lopez, the council\'s budget '
    "chair. "
    "Local merchants reacted with alarm. "
    "According to Tom Becker, who runs a bakery on Elm Street, sales could fall by a fifth. "
    '"We depend on drivers," Becker told reporters. '
    "The transit authority said it would add two bus routes to the area. "
    "Officials estimate the closure will save four million dollars a year. "
    "The garage opened in 1998."
)

GERMAN = (
    "Die Stadt sollte endlich mehr Geld in den Nahverkehr investieren. "
    "Viele Menschen fahren mit dem Auto, weil die Busse zu selten kommen. "
    "Laut Anna Müller, der Sprecherin des Verkehrsverbunds, fehlen jedes Jahr Millionen. "
    "Aber der Stadtrat zögert seit Jahren. "
    "Meiner Meinung nach ist es an der Zeit, das zu ändern."
)


def _sentences(text: str, lang: str = "en") -> list[str]:
    return [s.strip() for s in sentencex.segment(lang, text) if s.strip()]


def _assert_verbatim_in_order(summary: str, text: str, lang: str = "en") -> int:
    """The summary is whole article sentences, in article order, joined by spaces."""
    pos = 0
    used = 0
    for sent in _sentences(text, lang):
        if summary.startswith(sent, pos):
            pos += len(sent)
            used += 1
            if pos < len(summary):
                assert summary[pos] == " "
                pos += 1
    assert pos == len(summary), f"not verbatim/in order: {summary[pos:]!r}"
    return used


def _assert_grounded(draft: Draft, text: str) -> None:
    assert draft.thesis in text
    assert draft.loaded_language == []
    for point in draft.argument_points:
        assert point.claim in text
        assert point.evidence and all(ev.quote in text for ev in point.evidence)


def test_opinion_piece() -> None:
    draft = summarize_extractive(OPINION)
    assert draft.article_type == "opinion"
    _assert_grounded(draft, OPINION)
    used = _assert_verbatim_in_order(draft.summary, OPINION)
    assert 1 <= used <= 5

    claims = [p.claim for p in draft.argument_points]
    assert claims, "cue sentences should become points"
    assert len(claims) <= 8
    # Points are in article order and carry the cue sentences.
    assert sorted(claims, key=OPINION.index) == claims
    assert "Our city should stop subsidising parking garages." in claims
    assert "It is time for the council to admit that the garage era is over." in claims
    # A sentence without any cue is not an argument point.
    assert "Some merchants worry that customers will stay away." not in claims
    assert all(p.speaker == "the author" for p in draft.argument_points)
    # The thesis carries a claim or reason cue.
    assert any(cue in draft.thesis for cue in ("should", "must", "believe", "time", "because"))
    # "X, because Y." splits off a premise.
    last = next(p for p in draft.argument_points if p.claim.startswith("We must"))
    assert last.premises == ["streets are for people"]


def test_news_piece_extracts_speakers() -> None:
    draft = summarize_extractive(NEWS)
    assert draft.article_type == "news"
    _assert_grounded(draft, NEWS)
    _assert_verbatim_in_order(draft.summary, NEWS)

    speakers = {p.claim: p.speaker for p in draft.argument_points}
    quote = next(c for c in speakers if "loses money" in c)
    assert speakers[quote] == "Maria Lopez"
    becker = next(c for c in speakers if c.startswith("According to Tom Becker"))
    assert speakers[becker] == "Tom Becker"
    told = next(c for c in speakers if "told reporters" in c)
    assert speakers[told] == "Becker"
    authority = next(c for c in speakers if "transit authority" in c)
    assert speakers[authority] == "The transit authority"


def test_german_paragraph() -> None:
    for language in (None, "de", "de-DE"):
        draft = summarize_extractive(GERMAN, language=language)
        assert draft.summary and draft.thesis
        _assert_grounded(draft, GERMAN)
        _assert_verbatim_in_order(draft.summary, GERMAN, "de")
        assert draft.argument_points
        by_claim = {p.claim: p for p in draft.argument_points}
        laut = next(c for c in by_claim if c.startswith("Laut"))
        assert by_claim[laut].speaker == "Anna Müller"
        weil = next(c for c in by_claim if "weil" in c)
        assert by_claim[weil].premises == ["die Busse zu selten kommen"]


def test_empty_and_whitespace() -> None:
    for text in ("", "   ", "\n\n\t"):
        draft = summarize_extractive(text)
        assert draft.summary == ""
        assert draft.thesis == ""
        assert draft.argument_points == []
        assert draft.article_type == "other"
        assert draft.loaded_language == []


def test_single_sentence() -> None:
    text = "  The bridge reopened to traffic on Monday morning.  "
    draft = summarize_extractive(text)
    assert draft.summary == "The bridge reopened to traffic on Monday morning."
    assert draft.thesis == draft.summary


def test_limits_are_respected() -> None:
    draft = summarize_extractive(OPINION, max_summary_sentences=2, max_points=3)
    assert _assert_verbatim_in_order(draft.summary, OPINION) == 2
    assert len(draft.argument_points) == 3
    assert summarize_extractive(OPINION, max_points=0).argument_points == []


def test_short_text_summary_is_about_a_third() -> None:
    # 6 sentences -> 2 summary sentences even though up to 5 are allowed.
    text = ". ".join(OPINION.split(". ")[:6]) + "."
    assert len(_sentences(text)) == 6
    assert _assert_verbatim_in_order(summarize_extractive(text).summary, text) == 2


def test_long_text_is_bounded_and_fast() -> None:
    topics = ["housing", "transit", "schools", "water", "energy", "parks", "taxes", "health"]
    paragraphs = []
    for i in range(100):
        a, b = topics[i % len(topics)], topics[(i * 3 + 1) % len(topics)]
        paragraphs.append(
            f"Paragraph {i} looks at {a} policy in district {i % 7}. "
            f"The council should fund {a} before {b}, because costs rise every year. "
            f'"We cannot wait on {b}," said Councillor Jane Doe{i % 5}. '
            f"However, critics argue that {a} spending in district {i % 7} has been wasteful. "
            f"Residents reported {i * 13 % 97} complaints about {b} last month."
        )
    text = "\n\n".join(paragraphs)
    start = time.perf_counter()
    draft = summarize_extractive(text)
    elapsed = time.perf_counter() - start
    assert elapsed < 5  # generous; typically tens of milliseconds
    assert 1 <= _assert_verbatim_in_order(draft.summary, text) <= 5
    assert 1 <= len(draft.argument_points) <= 8
    _assert_grounded(draft, text)
    assert {p.speaker for p in draft.argument_points} <= {"the author"} | {
        f"Councillor Jane Doe{k}" for k in range(5)
    } | {"critics"}


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_and_quotes_are_verbatim(text: str) -> None:
    draft = summarize_extractive(text)
    assert draft.thesis in text
    for point in draft.argument_points:
        for ev in point.evidence:
            assert ev.quote in text


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "We",
                "must",
                "act",
                "because",
                "said",
                "Jane",
                "Doe",
                "according",
                "to",
                "the",
                "However",
                ",",
                ".",
                "!",
                "?",
                '"',
                "\n",
                "I",
                "believe",
                "laut",
                "weil",
                "it",
            ]
        ),
        max_size=60,
    ),
    st.sampled_from([None, "en", "de", "es", "fr", "xx", "", "zz-YY"]),
)
def test_never_raises_on_cue_soup(words: list[str], language: str | None) -> None:
    text = " ".join(words)
    draft = summarize_extractive(text, language=language)
    for point in draft.argument_points:
        assert point.claim in text
        assert all(ev.quote in text for ev in point.evidence)
