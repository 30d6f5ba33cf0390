"""Tests for worker.grounding: our own verification of LLM evidence quotes."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from worker.grounding import (
    _MULTI,
    _ONE_TO_ONE,
    MIN_FUZZY_CHARS,
    Grounder,
    QuoteMatch,
    _normalise_with_map,
    find_term,
    normalize,
)

ARTICLE = (
    "The council met on Tuesday.\n\n"
    "“We cannot afford another  year of delays,” said Mayor Ana Ruiz.\n"
    "Critics called the plan a reckless gamble — a claim the mayor rejected.\n"
    "The budget… is final, officials said. The budget is final."
)


def span(text: str, m: QuoteMatch) -> str:
    assert m.start >= 0 and m.end >= m.start
    return text[m.start : m.end]


# --- exact and normalised matches --------------------------------------------


def test_exact_substring() -> None:
    m = Grounder(ARTICLE).locate("Critics called the plan a reckless gamble")
    assert m.verified and m.score == 100.0
    assert span(ARTICLE, m) == "Critics called the plan a reckless gamble"


def test_exact_substring_with_surrounding_whitespace() -> None:
    m = Grounder(ARTICLE).locate("  The council met on Tuesday.\n")
    assert m.verified
    assert span(ARTICLE, m) == "The council met on Tuesday."


def test_typographic_quotes_dashes_and_ellipsis() -> None:
    g = Grounder(ARTICLE)
    m = g.locate('"We cannot afford another year of delays," said Mayor Ana Ruiz.')
    assert m.verified and m.score == 100.0
    # Surrounding quote marks of the quote are stripped; the span starts at
    # the first character of the match.
    assert span(ARTICLE, m) == "We cannot afford another  year of delays,” said Mayor Ana Ruiz."

    m = g.locate("a reckless gamble - a claim the mayor rejected")
    assert m.verified and span(ARTICLE, m) == "a reckless gamble — a claim the mayor rejected"

    m = g.locate("The budget... is final")
    assert m.verified and span(ARTICLE, m) == "The budget… is final"


def test_typographic_apostrophes_in_text() -> None:
    text = "She said it wasn’t the council’s fault at all."
    m = Grounder(text).locate("it wasn't the council's fault")
    assert m.verified and span(text, m) == "it wasn’t the council’s fault"


def test_case_and_whitespace_differences() -> None:
    text = "Intro.\nThe   Minister said\nthat the\tplan  would\r\n  FAIL badly.\nEnd."
    m = Grounder(text).locate("the minister said that the plan would fail badly.")
    assert m.verified and m.score == 100.0
    assert span(text, m) == "The   Minister said\nthat the\tplan  would\r\n  FAIL badly."


def test_casefold_expansion_maps_back_to_whole_characters() -> None:
    text = "Die Straße war gesperrt, sagte die Polizei."
    m = Grounder(text).locate("die strasse war gesperrt")
    assert m.verified and span(text, m) == "Die Straße war gesperrt"
    # "ss" must not match half of "ß"
    text2 = "Maß sagen"
    assert Grounder(text2).locate("s sagen").verified is False


def test_repeated_sentence_returns_first_occurrence() -> None:
    text = "It is final. Something else entirely here. It is final. It is FINAL."
    g = Grounder(text)
    m = g.locate("It is final.")
    assert (m.start, m.end) == (0, len("It is final."))
    m = g.locate("it   is final.")  # normalised path
    assert (m.start, m.end) == (0, len("It is final."))


def test_emoji_and_non_latin_scripts_offsets() -> None:
    text = (
        "🎉🎉 Праздник начался! 👨‍👩‍👧 家族が集まった。"
        "\nالعائلة اجتمعت في المساء ✨ and “everyone” cheered 🙌 loudly."
    )
    g = Grounder(text)
    for quote in (
        "Праздник начался!",
        "家族が集まった。",
        "العائلة اجتمعت في المساء",
        "cheered 🙌 loudly",
    ):
        m = g.locate(quote)
        assert m.verified and span(text, m) == quote
    m = g.locate('✨ AND "EVERYONE" CHEERED 🙌')
    assert m.verified and span(text, m) == "✨ and “everyone” cheered 🙌"
    m = g.locate("праздник   НАЧАЛСЯ!")
    assert m.verified and span(text, m) == "Праздник начался!"


# --- fuzzy --------------------------------------------------------------------


def test_small_typo_verifies_fuzzily_with_right_span() -> None:
    g = Grounder(ARTICLE)
    m = g.locate("Critics called the plan a reckles gamble")  # dropped 's'
    assert m.verified and 90 <= m.score < 100
    assert span(ARTICLE, m) == "Critics called the plan a reckless gamble"

    m = g.locate("Critics callde the plan a reckless gamble")  # transposition
    assert m.verified and m.score < 100
    assert span(ARTICLE, m) == "Critics called the plan a reckless gamble"

    m = g.locate("Critics called the plann a reckless gamble")  # extra char
    assert m.verified and m.score < 100
    assert span(ARTICLE, m) == "Critics called the plan a reckless gamble"


def test_typo_in_long_text_far_from_start() -> None:
    filler = " ".join(f"Paragraph {i} talks about topic number {i * 7}." for i in range(3000))
    sentence = "The harbour authority confirmed the closure of the northern pier until March."
    text = filler + " " + sentence + " " + filler
    m = Grounder(text).locate(sentence.replace("confirmed", "confirmd"))
    assert m.verified and m.score < 100
    assert span(text, m) == sentence


def test_paraphrase_is_not_verified() -> None:
    g = Grounder(ARTICLE)
    for quote in (
        "The mayor said the city could not wait another year.",  # paraphrase
        "Opponents described the proposal as a dangerous bet.",  # paraphrase
        "The council unanimously approved a new stadium on Friday.",  # invented
    ):
        m = g.locate(quote)
        assert not m.verified, quote
        assert m.score < 90


def test_unverified_keeps_best_span_and_score() -> None:
    text = "Alpha. The committee will publish its final report next spring. Omega."
    m = Grounder(text).locate("The committee will publish an interim memo next autumn.")
    assert not m.verified
    assert 0 < m.score < 90
    assert 0 <= m.start < m.end <= len(text)


def test_threshold_is_configurable() -> None:
    quote = "Critics called the plan a reckles gamble"
    assert Grounder(ARTICLE, fuzzy_threshold=99.5).locate(quote).verified is False
    assert Grounder(ARTICLE, fuzzy_threshold=90).locate(quote).verified is True


def test_quote_longer_than_text_is_not_verified() -> None:
    text = "Short article body here."
    m = Grounder(text).locate(text + " And then a long invented continuation follows it.")
    assert not m.verified


@pytest.mark.parametrize("quote", ["", "   ", "\n\t", '""', "“ ”"])
def test_empty_quote(quote: str) -> None:
    assert Grounder(ARTICLE).locate(quote) == QuoteMatch(-1, -1, False, 0.0)


def test_short_quote_guard() -> None:
    g = Grounder(ARTICLE)
    # Exact short quotes are fine ...
    m = g.locate("Tuesday")
    assert m.verified and span(ARTICLE, m) == "Tuesday"
    assert g.locate("tuesday.").verified
    # ... but near-misses below MIN_FUZZY_CHARS never verify fuzzily.
    for quote in ("Tusday", "Ana Ruis", "the budgets"):
        assert len(normalize(quote)) < MIN_FUZZY_CHARS
        m = g.locate(quote)
        assert m == QuoteMatch(-1, -1, False, 0.0)


def test_quote_match_is_frozen() -> None:
    m = Grounder(ARTICLE).locate("Tuesday")
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.start = 3  # type: ignore[misc]


# --- word-level check of fuzzy matches ------------------------------------------

TAX_TEXT = (
    "The finance committee met on Monday to review the budget.\n"
    "Officials said the new tax was not a failure and would continue next year, "
    "according to the ministry.\n"
    "Unemployment fell to 12 percent, the government’s statistics office reported.\n"
    "José María Rivas said the reform was necessary."
)
TAX_SENTENCE = "Officials said the new tax was not a failure and would continue next year"
JOBS_SENTENCE = "Unemployment fell to 12 percent, the government’s statistics office reported"


def _assert_rejected_with_span(quote: str, expected_span: str) -> None:
    m = Grounder(TAX_TEXT).locate(quote)
    assert not m.verified, quote
    # The character-level score alone would have verified it ...
    assert m.score >= 90, quote
    # ... and it is still reported, for the best span.
    assert span(TAX_TEXT, m) == expected_span
    assert m.score == pytest.approx(fuzz.ratio(normalize(quote), normalize(expected_span)))


@pytest.mark.parametrize(
    "edit",
    [("not ", ""), ("failure", "success"), ("continue", "end"), ("new", "old")],
    ids=["drop-not", "failure-success", "continue-end", "new-old"],
)
def test_meaning_changing_one_word_edit_is_not_verified(edit: tuple[str, str]) -> None:
    quote = TAX_SENTENCE.replace(*edit, 1)
    assert quote != TAX_SENTENCE
    _assert_rejected_with_span(quote, TAX_SENTENCE)


@pytest.mark.parametrize(
    "edit",
    [
        ("would", "wouldn't"),  # negation by contraction
        ("would", "could"),
        ("next year", "last year"),
        ("a failure", "no failure"),
        ("Officials", "Official"),  # number (a final "s"), not a typo
    ],
)
def test_more_meaning_changing_edits_are_not_verified(edit: tuple[str, str]) -> None:
    _assert_rejected_with_span(TAX_SENTENCE.replace(*edit, 1), TAX_SENTENCE)


def test_changed_number_is_not_verified() -> None:
    _assert_rejected_with_span(JOBS_SENTENCE.replace("12 percent", "21 percent"), JOBS_SENTENCE)
    _assert_rejected_with_span(JOBS_SENTENCE.replace("12 percent", "12.5 percent"), JOBS_SENTENCE)
    _assert_rejected_with_span(JOBS_SENTENCE.replace("12 percent", "twelve percent"), JOBS_SENTENCE)


def test_genuine_typos_still_verify() -> None:
    g = Grounder(TAX_TEXT)
    for quote, expected in (
        (JOBS_SENTENCE.replace("government", "goverment"), JOBS_SENTENCE),
        (TAX_SENTENCE.replace("said the", "said teh"), TAX_SENTENCE),
        (
            TAX_SENTENCE + ", acording to teh ministry.",
            TAX_SENTENCE + ", according to the ministry.",
        ),
        ("Officials said the new tax was not a failure and woudl continue", TAX_SENTENCE[:-10]),
        (
            "Jose Maria Rivas said the reform was necessary.",
            "José María Rivas said the reform was necessary.",
        ),
        ("Unemployment fell to 12 percent - the governments statistics office", JOBS_SENTENCE[:-9]),
    ):
        m = g.locate(quote)
        assert m.verified, quote
        assert 90 <= m.score < 100
        assert span(TAX_TEXT, m) == expected


def test_real_word_swap_is_not_a_typo() -> None:
    # "adopt"/"adapt" differ in one letter, but "adapt" is a word of the
    # article, so the quote's "adapt" is a different word, not a misspelling.
    text = "The city will adopt the plan in May. Firms must adapt quickly, critics said."
    m = Grounder(text).locate("The city will adapt the plan in May.")
    assert not m.verified and m.score >= 90
    assert span(text, m) == "The city will adopt the plan in May."


# --- find_term ----------------------------------------------------------------


def test_find_term_case_insensitive_word_boundaries() -> None:
    text = "A warning about the War. Wars end; the war ends."
    assert find_term(text, "war") == (20, 23)  # not inside "warning"
    assert find_term(text, "WARS") == (25, 29)
    assert find_term(text, "arn") is None
    assert find_term(text, "") is None
    assert find_term(text, "peace") is None


def test_find_term_phrase_and_normalisation() -> None:
    text = "Critics called it a reckless\n  gamble — and a “job-killing” tax."
    start, end = find_term(text, "reckless gamble")  # type: ignore[misc]
    assert text[start:end] == "reckless\n  gamble"
    start, end = find_term(text, '"job-killing"')  # type: ignore[misc]
    assert text[start:end] == "job-killing"
    start, end = find_term(text, "gamble - and")  # type: ignore[misc]
    assert text[start:end] == "gamble — and"


def test_find_term_non_latin() -> None:
    text = "Власти назвали протест «провокацией». Провокация!"
    assert find_term(text, "провокация") == (38, 48)
    assert find_term(text, "Протест") == (15, 22)


# --- properties ---------------------------------------------------------------

ALPHABET = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789.,;:!?-'\"")
    + list("     \n\n\t\r")
    + list("“”„‘’‚–—…ßİéñçøÅΣσςﬁ")
    + list("Привет世界こんにちはمرحبا")
    + ["🎉", "👍", "\u200d", "\u00a0", "\u00ad", "\u200b"]
) | st.characters(codec="utf-8")


def _normalise_char_by_char(text: str) -> tuple[str, list[int]]:
    """What ``_normalise_with_map`` computes in bulk, one character at a time."""
    norm: list[str] = []
    src: list[int] = []
    i = 0
    while i < len(text):
        if text[i].isspace():
            norm.append(" ")
            src.append(i)
            while i + 1 < len(text) and text[i + 1].isspace():
                i += 1
        else:
            folded = text[i].casefold().translate(_ONE_TO_ONE)
            out = "".join(_MULTI.get(c, c) for c in _MULTI.get(text[i], folded))
            norm.append(out)
            src.extend([i] * len(out))
        i += 1
    return "".join(norm), src


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "a b",
        "a  b\n\nc",
        " \t\r\n\u3000\u00a0\u2028x ",
        "Straße … İ ﬁ\u00ad\u200b\ufeff “Σ”",
    ],
)
def test_normalisation_map_examples(text: str) -> None:
    assert _normalise_with_map(text) == _normalise_char_by_char(text)


@settings(max_examples=300, deadline=None)
@given(st.text(ALPHABET, max_size=300))
def test_property_normalisation_map_matches_char_by_char(text: str) -> None:
    assert _normalise_with_map(text) == _normalise_char_by_char(text)


_VARIANTS = {
    '"': '"“”„',
    "“": '"“”',
    "”": '"“”',
    "'": "'‘’",
    "’": "'’",
    "-": "-–—",
    "—": "-—",
    "–": "-–",
}


def _equivalent_variant(quote: str, rnd: random.Random) -> str:
    """A string that normalises like ``quote`` but differs from it textually."""
    out = []
    for part in re.split(r"(\s+|\.\.\.|…)", quote):
        if not part:
            continue
        if part.isspace():
            out.append(rnd.choice([" ", "  ", "\n", " \t\n "]))
        elif part in ("...", "…"):
            out.append(rnd.choice(["...", "…"]))
        else:
            for c in part:
                if c in _VARIANTS:
                    out.append(rnd.choice(_VARIANTS[c]))
                elif c.isascii() and c.isalpha():
                    out.append(c.swapcase() if rnd.random() < 0.5 else c)
                else:
                    out.append(c)
    variant = "".join(out)
    if rnd.random() < 0.3:
        variant = rnd.choice(['"', "“", "'"]) + variant + rnd.choice(['"', "”", "'"])
    return variant


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), text=st.text(ALPHABET, min_size=12, max_size=400), perturb=st.booleans())
def test_property_any_slice_is_verified(data: st.DataObject, text: str, perturb: bool) -> None:
    """Any slice is found -- verbatim, or (perturb=True) after rewriting it the
    way an LLM might (case, typographic vs ASCII punctuation, whitespace,
    added quote marks), which exercises the normalised path and offset map."""
    # Pick a slice [i:j] containing at least 12 non-space characters.
    solid = [k for k, c in enumerate(text) if not c.isspace()]
    assume(len(solid) >= 12)
    a = data.draw(st.integers(0, len(solid) - 12), label="first solid")
    b = data.draw(st.integers(a + 11, len(solid) - 1), label="last solid")
    i = data.draw(st.integers(0, solid[a]), label="i")
    j = data.draw(st.integers(solid[b] + 1, len(text)), label="j")
    quote = text[i:j]
    if perturb:
        quote = _equivalent_variant(quote, data.draw(st.randoms(use_true_random=False)))
    m = Grounder(text).locate(quote)
    assert m.verified and m.score == 100.0
    assert 0 <= m.start < m.end <= len(text)
    # It may be an earlier identical occurrence, but it normalises the same.
    assert normalize(text[m.start : m.end]) == normalize(quote)


TEXT_WORDS = [
    *("council", "budget", "mayor", "said", "delays", "plan", "critics", "vote", "city"),
    *("tax", "school", "road", "police", "report", "year", "week", "market", "price"),
]
# Words sharing hardly any letter sequences with TEXT_WORDS, so a sentence of
# them can be neither a substring nor a near-substring of the text.
FOREIGN_WORDS = [
    *("zebra", "quokka", "jukebox", "wizardry", "oxygen", "fjord", "kayak"),
    *("whiskey", "sphinx", "rhythm", "nymph", "glyph", "buzzkill", "quixotic"),
]


@settings(max_examples=200, deadline=None)
@given(
    text_words=st.lists(st.sampled_from(TEXT_WORDS), min_size=0, max_size=200),
    filler=st.text(st.sampled_from(list(" \n.,“”—") + list("привет世界")), max_size=50),
    quote_words=st.lists(st.sampled_from(FOREIGN_WORDS), min_size=3, max_size=12),
    capitalise=st.booleans(),
)
def test_property_invented_sentence_never_verified(
    text_words: list[str], filler: str, quote_words: list[str], capitalise: bool
) -> None:
    text = filler + " ".join(text_words) + filler
    quote = " ".join(quote_words) + "."
    if capitalise:
        quote = quote.capitalize()
    m = Grounder(text).locate(quote)
    assert not m.verified
    assert m.score < 90


# Words inserted into quotes: some of TEXT_WORDS plus ones that are not in the
# text, including negations.
INSERT_WORDS = [*TEXT_WORDS, "not", "never", "nearly", "former", "without", "new"]


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    words=st.lists(st.sampled_from(TEXT_WORDS), min_size=4, max_size=150),
    edit=st.sampled_from(["delete", "insert", "replace"]),
)
def test_property_word_inserted_deleted_or_replaced_never_verified(
    data: st.DataObject, words: list[str], edit: str
) -> None:
    """A quote cut from the text (whole words) with one whole word deleted,
    inserted or replaced by another never verifies -- unless the edited quote
    happens to occur verbatim elsewhere in the text.  TEXT_WORDS are no
    near-spellings of each other, so no other passage matches it either."""
    text = " ".join(words)
    i = data.draw(st.integers(0, len(words) - 4), label="first word")
    j = data.draw(st.integers(i + 4, min(len(words), i + 16)), label="end word")
    quote_words = words[i:j]
    if edit == "delete":
        k = data.draw(st.integers(0, len(quote_words) - 1), label="deleted")
        del quote_words[k]
    else:
        k = data.draw(st.integers(0, len(quote_words) - (edit == "replace")), label="position")
        new = data.draw(st.sampled_from(INSERT_WORDS), label="word")
        if edit == "replace":
            assume(new != quote_words[k])
            quote_words[k] = new
        else:
            quote_words.insert(k, new)
    quote = " ".join(quote_words)
    if data.draw(st.booleans(), label="sentence"):
        quote = quote.capitalize() + "."
    assume(normalize(quote).rstrip(".") not in normalize(text))
    m = Grounder(text).locate(quote)
    assert not m.verified, (quote, m)
