"""The refine stage on the faults small models show: duplicate points, every copied sentence as
evidence, one quote for several claims, a summary that repeats itself."""

from kernel.schemas import ArgumentPointPublic, EvidencePublic
from worker.extractive import reported_spans
from worker.refine import MAX_QUOTES, refine, refine_points, without_repeats
from worker.schemas import Draft


def ev(quote: str, verified: bool = True) -> EvidencePublic:
    return EvidencePublic(quote=quote, start=0, end=len(quote), verified=verified, score=100.0)


def point(claim: str, *quotes: str, speaker: str = "the author") -> ArgumentPointPublic:
    return ArgumentPointPublic(
        claim=claim, speaker=speaker, premises=[], evidence=[ev(q) for q in quotes]
    )


def test_points_that_make_the_same_claim_become_one_keeping_their_quotes() -> None:
    points = [
        point("The United States is prolonging the war by delaying sanctions.", "q1"),
        point("By delaying sanctions, the United States is prolonging the war.", "q2", "q1"),
        point("Putin wants a peace deal before any ceasefire.", "q3", speaker="Putin"),
    ]
    refined = refine_points(points)
    assert [p.claim for p in refined] == [points[0].claim, points[2].claim]
    assert [e.quote for e in refined[0].evidence] == ["q1", "q2"]


def test_the_same_claim_from_two_speakers_stays_two_points() -> None:
    claim = "The toll will cut traffic in the city centre."
    refined = refine_points([point(claim, "a"), point(claim, "b", speaker="the mayor")])
    assert [p.speaker for p in refined] == ["the author", "the mayor"]


def test_a_point_keeps_a_few_quotes_chosen_for_its_claim() -> None:
    claim = "The council rushed the library closure vote."
    quotes = [
        "The weather was mild on Tuesday.",
        "Councillors rushed the vote on closing the library.",
        "The library closure vote took four minutes.",
        "Parking fees rose last year.",
        "The vote on the library closure was rushed, critics said.",
    ]
    [refined] = refine_points([point(claim, *quotes)])
    kept = [e.quote for e in refined.evidence]
    assert len(kept) == MAX_QUOTES
    assert "The weather was mild on Tuesday." not in kept
    assert "Parking fees rose last year." not in kept
    assert kept == [q for q in quotes if q in kept]  # in the article's order


def test_verified_quotes_go_before_unverified_ones() -> None:
    claim = "Fares should be free for pupils."
    p = ArgumentPointPublic(
        claim=claim,
        speaker="the author",
        premises=[],
        evidence=[ev("Fares should be free for pupils, she wrote.", verified=False)]
        + [ev(f"Free fares for pupils, point {n}.") for n in range(3)],
    )
    [refined] = refine_points([p])
    assert all(e.verified for e in refined.evidence)


def test_a_quote_serves_only_the_claim_it_fits_best() -> None:
    shared = "The bridge will cost 240 million dollars and take four years."
    points = [
        point("The bridge is too expensive at 240 million dollars.", shared, "a"),
        point("Commuters will wait years for relief.", "b", shared),
    ]
    refined = refine_points(points)
    assert [shared in [e.quote for e in p.evidence] for p in refined] == [True, False]


def test_the_headline_is_never_evidence() -> None:
    title = "Putin outplays Trump again"
    [refined] = refine_points(
        [point("Putin outplays Trump.", "Putin outplays Trump again", "x")], title
    )
    assert [e.quote for e in refined.evidence] == ["x"]


def test_a_summary_that_repeats_itself_is_trimmed() -> None:
    summary = (
        "The author argues that the charge is choking the city. Shops report fewer visitors. "
        "The author argues that the charge is choking the city."
    )
    assert without_repeats(summary) == (
        "The author argues that the charge is choking the city. Shops report fewer visitors."
    )
    plain = "One sentence. Another one."
    assert without_repeats(plain) == plain


def test_the_stage_refines_summary_and_points_together() -> None:
    draft = Draft(
        article_type="news",
        thesis="T.",
        summary="The mayor said the plan works. The mayor said the plan works.",
        argument_points=[],
        loaded_language=[],
    )
    refined, points = refine(draft, [point("c", "q"), point("c", "q")], "q", None, "en")
    assert refined.summary == "The mayor said the plan works."
    assert len(points) == 1


REPORTED = (
    "The White House says sanctions must wait. "
    "Putin has steadfastly insisted that a ceasefire should come after a peace deal. "
    "He has always maintained that the West must lift its sanctions first. "
    "I think the delay is a mistake."
)


def quoted(claim: str, quote: str, speaker: str = "the author") -> ArgumentPointPublic:
    start = REPORTED.index(quote)
    evidence = EvidencePublic(
        quote=quote, start=start, end=start + len(quote), verified=True, score=100.0
    )
    return ArgumentPointPublic(claim=claim, speaker=speaker, premises=[], evidence=[evidence])


def test_a_position_the_article_reports_is_credited_to_its_speaker_not_the_author() -> None:
    spans = reported_spans(REPORTED, "en")
    putin = quoted(
        "A ceasefire should follow a peace deal.",
        "Putin has steadfastly insisted that a ceasefire should come after a peace deal.",
    )
    pronoun = quoted(
        "The West must lift sanctions first.",
        "He has always maintained that the West must lift its sanctions first.",
    )
    white_house = quoted("Sanctions must wait.", "The White House says sanctions must wait.")
    own = quoted("The delay is a mistake.", "I think the delay is a mistake.")
    named = quoted(
        "A ceasefire should follow a peace deal.",
        "Putin has steadfastly insisted that a ceasefire should come after a peace deal.",
        speaker="Russia's president",
    )
    refined = refine_points([putin, pronoun, white_house, own, named], spans=spans)
    assert [p.speaker for p in refined] == [
        "Putin",
        "Putin",
        "The White House",
        "the author",
        "Russia's president",  # a speaker the model named is its own call
    ]


def test_quotes_reporting_two_speakers_leave_the_point_where_it_was() -> None:
    spans = reported_spans(REPORTED, "en")
    both = quoted("Sanctions should wait for a deal.", "The White House says sanctions must wait.")
    start = REPORTED.index("Putin has")
    both.evidence.append(
        EvidencePublic(quote="Putin has", start=start, end=start + 9, verified=True, score=100.0)
    )
    unverified = quoted("Sanctions must wait.", "The White House says sanctions must wait.")
    unverified.evidence[0].verified = False
    for kept in (both, unverified):
        [refined] = refine_points([kept], spans=spans)
        assert refined.speaker == "the author"
