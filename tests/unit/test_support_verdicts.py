"""Reading the support check's answer: quote ids, and the bare claim numbers small models give."""

from kernel.schemas import ArgumentPointPublic, EvidencePublic
from worker.support import QuoteVerdict, read_verdicts, support_listing


def point(claim: str, *quotes: str) -> ArgumentPointPublic:
    evidence = [
        EvidencePublic(quote=q, start=0, end=len(q), verified=True, score=100.0) for q in quotes
    ]
    return ArgumentPointPublic(claim=claim, speaker="the author", premises=[], evidence=evidence)


def verdicts(*pairs: tuple[str, str]) -> list[QuoteVerdict]:
    return [QuoteVerdict.model_validate({"id": i, "verdict": v}) for i, v in pairs]


POINTS = [point("One quote.", "q"), point("Two quotes.", "a", "b"), point("Also one.", "z")]


def test_quote_ids_name_quotes() -> None:
    listing, ids = support_listing(POINTS)
    assert "[2.2] b" in listing
    read = read_verdicts(verdicts(("1.1", "supports"), ("[2.2]", "unrelated")), ids)
    assert read == {(0, 0): "supports", (1, 1): "unrelated"}


def test_a_bare_claim_number_names_the_claims_only_quote_and_no_other() -> None:
    _, ids = support_listing(POINTS)
    read = read_verdicts(verdicts(("1", "partial"), ("2", "supports"), ("3", "supports")), ids)
    assert read == {(0, 0): "partial", (2, 0): "supports"}  # claim 2 has two quotes: not read


def test_two_verdicts_for_one_quote_leave_it_not_judged() -> None:
    _, ids = support_listing(POINTS)
    read = read_verdicts(verdicts(("1", "supports"), ("1.1", "unrelated"), ("9", "supports")), ids)
    assert read == {}
