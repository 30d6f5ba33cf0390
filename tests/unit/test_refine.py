"""The refine stage on the faults small models show: duplicate points, every copied sentence as
evidence, one quote for several claims, a summary that repeats itself."""

from kernel.schemas import ArgumentPointPublic, EvidencePublic
from worker.extractive import reported_spans
from worker.refine import (
    MAX_QUOTES,
    credit_reported_positions,
    interviewers,
    refine,
    refine_points,
    without_repeats,
)
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


def test_a_claim_restated_under_another_speaker_without_a_verified_quote_is_dropped() -> None:
    claim = "The city should stop building the tram line."
    unbacked = ArgumentPointPublic(
        claim=claim, speaker="Thomas Brenner", premises=[], evidence=[ev("invented", False)]
    )
    backed = point(claim, "The mayor said the tram line must stop.", speaker="the mayor")
    other = point("The tram will cost more every year.", "q", speaker="the club")
    refined = refine_points([point(claim, "q1"), unbacked, backed, other])
    assert [p.speaker for p in refined] == ["the author", "the mayor", "the club"]
    # the unbacked one goes whether it comes before or after the backed one
    assert [p.speaker for p in refine_points([unbacked, backed])] == ["the mayor"]
    # of two unbacked twins the first stays: the claim is still on the map
    twin = unbacked.model_copy(update={"speaker": "Sabine Roth"})
    assert [p.speaker for p in refine_points([unbacked, twin])] == ["Thomas Brenner"]


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
    refined = refine_points([putin, pronoun, white_house, own, named], text=REPORTED)
    assert [p.speaker for p in refined] == [
        "Putin",
        "Putin",
        "The White House",
        "the author",
        "Russia's president",  # a speaker the model named is its own call
    ]


def test_quotes_reporting_two_speakers_leave_the_point_where_it_was() -> None:
    both = quoted("Sanctions should wait for a deal.", "The White House says sanctions must wait.")
    start = REPORTED.index("Putin has")
    both.evidence.append(
        EvidencePublic(quote="Putin has", start=start, end=start + 9, verified=True, score=100.0)
    )
    unverified = quoted("Sanctions must wait.", "The White House says sanctions must wait.")
    unverified.evidence[0].verified = False
    for kept in (both, unverified):
        [refined, *_] = refine_points([kept], text=REPORTED)
        assert refined.speaker == "the author"


def test_a_quote_that_does_not_state_the_claim_or_runs_on_credits_no_one() -> None:
    # the model's own claim, given a neighbouring sentence as its quote
    misfit = quoted("The author's delay is a mistake.", "The White House says sanctions must wait.")
    # a quote from a reported sentence into the author's own
    reported = "He has always maintained that the West must lift its sanctions first."
    runs_on = quoted(
        "The West must lift its sanctions first, and the delay is a mistake.",
        f"{reported} I think the delay is a mistake.",
    )
    spans = reported_spans(REPORTED, "en")
    for point in (misfit, runs_on):
        [kept] = credit_reported_positions([point], spans, REPORTED)
        assert kept.speaker == "the author"
    inside = quoted("The West must lift its sanctions first.", reported)
    [credited] = credit_reported_positions([inside], spans, REPORTED)
    assert credited.speaker == "Putin"


def test_positions_the_map_lacks_become_points_of_their_speakers() -> None:
    own = quoted("The delay is a mistake.", "I think the delay is a mistake.")
    putin = quoted(
        "Putin wants a peace deal before any ceasefire.",
        "Putin has steadfastly insisted that a ceasefire should come after a peace deal.",
        speaker="Putin",
    )
    refined = refine_points([own, putin], text=REPORTED)
    assert [(p.claim, p.speaker) for p in refined] == [
        ("The delay is a mistake.", "the author"),
        ("Putin wants a peace deal before any ceasefire.", "Putin"),
        ("The White House says sanctions must wait.", "The White House"),
        ("He has always maintained that the West must lift its sanctions first.", "Putin"),
    ]
    added = refined[2].evidence
    assert [(e.quote, e.verified) for e in added] == [(refined[2].claim, True)]
    assert REPORTED[added[0].start : added[0].end] == refined[2].claim  # type: ignore[index]
    assert refine_points([own]) == [own]  # without the text, nothing is added


def test_the_authors_own_framed_claim_is_not_someone_elses_position() -> None:
    text = (
        "The board's chair, Dana Ruiz, said the night lines cost too much. "
        "The author argues that the cut will hurt nurses who start work before dawn."
    )
    assert {s.speaker for s in reported_spans(text, "en")} == {"Dana Ruiz", "The author"}
    assert [p.speaker for p in refine_points([], text=text)] == ["Dana Ruiz"]


def test_questions_fragments_and_the_interviewer_state_no_position() -> None:
    text = (
        "Moderator: Ms. Ibrahim, you run the Eastgate branch. Is he right about the numbers?\n"
        "Amina Ibrahim: Partly. Our branch is the only place in the neighbourhood with free "
        "internet.\n"
        "Moderator: What would change for your family?\n"
        "Jasdeep Kaur: Everything after school. The bus to the central library takes forty "
        "minutes each way. Would you make your kids ride it?\n"
    )
    spans = reported_spans(text, "en")
    assert {s.speaker for s in spans} >= {"Moderator", "Amina Ibrahim", "Jasdeep Kaur"}
    assert interviewers(spans, text) == {"moderator"}
    refined = refine_points([], text=text)
    assert [(p.speaker, p.claim) for p in refined] == [
        ("Amina Ibrahim", "Our branch is the only place in the neighbourhood with free internet."),
        ("Jasdeep Kaur", "The bus to the central library takes forty minutes each way."),
    ]
