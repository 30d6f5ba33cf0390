"""Tests for worker.neutrality: loaded terms in a source, and the summary gate."""

from __future__ import annotations

import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.neutrality import (
    _KEY_TABLE,
    _TOKEN_RE,
    NeutralityIssue,
    TermScan,
    TermSpan,
    attributed_regions,
    curated_terms,
    loaded_terms,
    quoted_regions,
    unattributed_loaded_terms,
)


def terms(text: str, extra: tuple[str, ...] = ()) -> list[str]:
    return [t.term for t in loaded_terms(text, extra)]


def issues(summary: str, source_terms: tuple[str, ...] = ()) -> list[str]:
    return [i.term for i in unattributed_loaded_terms(summary, source_terms)]


# --- lexicon -------------------------------------------------------------------


@pytest.mark.parametrize(
    "word",
    [
        "fiasco",
        "naive",
        "disaster",
        "outrageous",
        "brilliant",
        "boondoggle",
        "shameful",
        "stupid",
        "regime",
        "puppet",
        "crusade",
        "bloated",
        "scheme",
        "radical",
        "extremist",
        "propaganda",
        "thugs",
        "draconian",
        "reckless",
        "cronies",
        "handout",
        "rigged",
    ],
)
def test_loaded_words_are_in(word: str) -> None:
    text = f"It was {word}."
    assert loaded_terms(text) == [TermSpan(word, 7, 7 + len(word))]


@pytest.mark.parametrize(
    "word",
    # below the threshold, or neutral reporting vocabulary excluded on purpose
    ["like", "good", "support", "agree", "war", "killed", "died", "crisis", "won", "free"],
)
def test_mild_and_descriptive_words_are_out(word: str) -> None:
    assert loaded_terms(f"It was {word} then.") == []


def test_words_at_the_threshold_are_in_and_just_below_are_out() -> None:
    # VADER rates "outrageous" and "awful" -2.0, "stupidity" -1.9, "lame" and "nice" 1.8
    assert terms("An outrageous, awful plan.") == ["outrageous", "awful"]
    assert terms("Such stupidity, a lame and nice plan.") == []


def test_multiword_supplement_terms() -> None:
    text = "A slush fund, a witch  hunt, and a\nwitch-hunt."
    assert terms(text) == ["slush fund", "witch  hunt", "witch-hunt"]
    # Separated by punctuation, the words do not form the phrase.
    assert terms("a slush, fund") == []


def test_emoticons_and_slang_are_not_terms() -> None:
    assert loaded_terms("x-d :-) <3 lol kia tia nfc") == []


# --- loaded_terms: offsets -----------------------------------------------------


def test_offsets_and_case_preserved() -> None:
    text = "Critics call it a FIASCO.\nThe Mayor's plan is naive, stupid and shameful."
    found = loaded_terms(text)
    assert [t.term for t in found] == ["FIASCO", "naive", "stupid", "shameful"]
    for t in found:
        assert text[t.start : t.end] == t.term
    assert found[0] == TermSpan("FIASCO", 18, 24)
    assert [t.start for t in found] == sorted(t.start for t in found)


def test_every_occurrence_is_reported() -> None:
    text = "Fiasco after fiasco: one fiasco."
    assert [(t.start, t.end) for t in loaded_terms(text)] == [(0, 6), (13, 19), (25, 31)]


def test_word_boundaries() -> None:
    # "bad" is a term; "badge" and "badminton" are not.
    assert terms("A badge for badminton, bad.") == ["bad"]
    assert terms("The grabbed bag.", ("grab",)) == []


def test_apostrophes_possessives_and_hyphens() -> None:
    text = "The regime’s cronies. The regime's cronies. Don't; can't stand it."
    assert terms(text) == ["regime", "cronies", "regime", "cronies", "can't stand"]
    # A hyphenated word is checked part by part ...
    found = loaded_terms("A fiasco-ridden, so-called reform.")
    assert [(t.term, t.start) for t in found] == [("fiasco", 2), ("so-called", 17)]
    # ... except after a negating prefix.
    assert terms("An anti-extremist, non-violent campaign.") == []


def test_capitalised_mid_sentence_words_are_names() -> None:
    assert terms("He flew to Great Britain for the Supreme Court case.") == []
    assert terms("Great plan. GREAT plan!") == ["Great", "GREAT"]


# --- loaded_terms: extra terms ---------------------------------------------------


def test_extra_terms_included_only_when_found() -> None:
    text = "A sweetheart deal, then another Sweetheart  Deal."
    found = loaded_terms(text, ["sweetheart deal", "giveaway", "  ", ""])
    assert found == [
        TermSpan("sweetheart deal", 2, 17),
        TermSpan("Sweetheart  Deal", 32, 48),
    ]


def test_quoted_extra_terms_are_unquoted() -> None:
    assert terms("A vanity fair.", ("“vanity”", "'fair'")) == ["vanity", "fair"]


def test_extra_terms_are_not_subject_to_the_name_heuristic() -> None:
    assert terms("They met the Elites, then", ("elites",)) == ["Elites"]


def test_extra_terms_with_punctuation_use_find_term() -> None:
    text = "It was the council’s “fair share” plan, said the mayor."
    found = loaded_terms(text, ['council\'s "fair share" plan', "$9 toll"])
    assert [(t.term, t.start) for t in found] == [("council’s “fair share” plan", 11)]


def test_overlaps_prefer_longer_span() -> None:
    text = "A total disaster and a witch hunt."
    found = loaded_terms(text, ["total disaster", "witch", "disaster and"])
    assert [t.term for t in found] == ["total disaster", "witch hunt"]


def test_deduplicated_by_span() -> None:
    text = "Such a fiasco."
    assert loaded_terms(text, ["fiasco", "FIASCO", "fiasco"]) == [TermSpan("fiasco", 7, 13)]


def test_empty_text() -> None:
    assert loaded_terms("") == []
    assert loaded_terms("", ["fiasco"]) == []


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                *"abcdefiorstuyFDS -'’‐\n,.\"“”İß",
                *("fiasco", "witch", "hunt", "slush", "fund", "so-called", "Great", "regime's"),
            ]
        ),
        max_size=60,
    ).map("".join),
    st.lists(st.text(max_size=15), max_size=4),
)
def test_property_spans_are_valid_and_disjoint(text: str, extra: list[str]) -> None:
    found = loaded_terms(text, extra)
    prev_end = 0
    for t in found:
        assert 0 <= t.start < t.end <= len(text)
        assert text[t.start : t.end] == t.term
        assert text[t.start : t.end].lower() == t.term.lower()
        assert t.start >= prev_end
        prev_end = t.end


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.lists(st.text(max_size=20), max_size=3))
def test_property_never_raises_on_arbitrary_text(text: str, extra: list[str]) -> None:
    found = loaded_terms(text, extra)
    assert all(text[t.start : t.end] == t.term for t in found)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    for issue in unattributed_loaded_terms(text, extra):
        assert text[issue.start : issue.end] == issue.term


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from([*"aSsΣσςİi'’ʼ‐‑- \n,.", "ΟΔΟΣ", "fiasco", "so-called", "witch hunt"]),
            max_size=40,
        ).map("".join),
    ),
    st.lists(st.sampled_from(["fiasco", "witch hunt", "“absurd”", "regime's", "ΟΔΟΣ"]), max_size=3),
)
def test_property_scan_tokens_as_one_regex_match_at_a_time(text: str, extra: list[str]) -> None:
    """TermScan's bulk tokenising gives what matching and lowering token by token gives, and a
    scan looked up twice answers as two fresh ones."""
    scan = TermScan(text)
    expected = [
        (m.start(), m.end(), m.group().lower().translate(_KEY_TABLE))
        for m in _TOKEN_RE.finditer(text)
    ]
    assert list(zip(scan._starts, scan._ends, scan._keys, strict=True)) == expected
    assert scan.terms(extra) == loaded_terms(text, extra)
    assert scan.terms() == loaded_terms(text)


# --- neutrality gate -------------------------------------------------------------


def test_neutral_summary_has_no_issues() -> None:
    summary = (
        "The council voted 7-4 to add a $9 toll to the harbour tunnel. The author "
        "argues the toll falls on low-income night-shift workers. The mayor said "
        "everyone must contribute. Five people died in the war, officials said."
    )
    assert unattributed_loaded_terms(summary) == []


def test_unattributed_fiasco_is_one_issue() -> None:
    summary = "The council approved the plan. The plan is a fiasco."
    assert unattributed_loaded_terms(summary) == [NeutralityIssue("fiasco", 45, 51)]
    assert summary[45:51] == "fiasco"


@pytest.mark.parametrize(
    "summary",
    [
        'The author says the plan is "a fiasco".',
        'Residents used the word "fiasco" often.',
        "Residents used the word “fiasco” often.",
        "Residents used the word ‘fiasco’ often.",
        "Residents used the word 'fiasco' often.",
        "Residents used the word «fiasco» often.",
        "“The council’s plan is a fiasco, and don’t let anyone tell you otherwise.”",
        "It isn't a 'boondoggle' at all.",
        "The mayor’s ‘brilliant’ idea was adopted.",
        "He wrote: “It was, in a word, ‘a fiasco’.”",
    ],
)
def test_quoted_terms_are_fine(summary: str) -> None:
    assert unattributed_loaded_terms(summary) == []


@pytest.mark.parametrize(
    "summary",
    [
        "The author calls the plan a fiasco.",
        "According to the mayor, the plan is a disaster.",
        "The plan is a fiasco, critics say.",
        "The plan, critics say, is a fiasco.",
        "The plan is a fiasco, says the mayor.",
        "In the author's view, the plan is a boondoggle.",
        "The plan is a boondoggle, in the author’s view.",
        "The author argues that the toll is reckless and the promenade a boondoggle.",
        "The plan, which the author describes as draconian, passed.",
        "Dr. Smith said the plan was stupid.",
    ],
)
def test_attributed_terms_are_fine(summary: str) -> None:
    assert unattributed_loaded_terms(summary) == []


def test_attribution_is_conservative() -> None:
    # A term before the verb is in the summary's own voice.
    assert issues("The reckless mayor says the plan works.") == ["reckless"]
    # Attribution does not cross a sentence boundary ...
    assert issues("The author calls it a fiasco. It is a disaster.") == ["disaster"]
    # ... nor a contrastive clause.
    assert issues("The author argues the plan is costly, but it is a fiasco.") == ["fiasco"]
    assert issues("The author argues the plan is costly; it is a fiasco.") == ["fiasco"]
    # A clause that merely contains a verb later on is not a tag.
    assert issues("The plan is a fiasco, and the mayor says it will be fixed.") == ["fiasco"]
    # "calls for" is not speech.
    assert issues("The plan calls for a bloated budget.") == ["bloated"]


def test_unpaired_quotes_exempt_nothing() -> None:
    assert issues('The plan is a "fiasco and more.') == ["fiasco"]
    # A possessive apostrophe is not a quotation mark.
    assert issues("The voters’ fiasco was costly.") == ["fiasco"]
    assert issues("The voters' fiasco was costly.") == ["fiasco"]


def test_source_terms_cannot_be_laundered() -> None:
    source = "Critics call it a sweetheart deal for developers."
    source_terms = [t.term for t in loaded_terms(source, ["sweetheart deal"])]
    assert source_terms == ["sweetheart deal"]
    summary = "The council approved a Sweetheart deal with developers."
    assert unattributed_loaded_terms(summary, source_terms) == [
        NeutralityIssue("Sweetheart deal", 23, 38)
    ]
    assert issues("Critics call it a sweetheart deal.", tuple(source_terms)) == []
    assert issues("The “sweetheart deal” was approved.", tuple(source_terms)) == []


def test_multiple_issues_in_order() -> None:
    summary = "The bloated plan is a fiasco. Critics say it is rigged."
    found = unattributed_loaded_terms(summary)
    assert [(i.term, i.start, i.end) for i in found] == [
        ("bloated", 4, 11),
        ("fiasco", 22, 28),
    ]


def test_quoted_regions_pairs_and_apostrophes() -> None:
    text = "He said “it’s ‘fine’” and 'ok' but don't."
    assert quoted_regions(text) == [(8, 21), (14, 20), (26, 30)]


def test_attributed_regions_cover_clause_after_cue() -> None:
    text = "Officials say the plan works. It costs more."
    regions = attributed_regions(text)
    assert regions == [(13, 28)]


# --- timings (not a test) ------------------------------------------------------------


def _print_timings() -> None:
    sentence = (
        "The council approved a bloated budget, which critics called a fiasco, while "
        "supporters said it was a fair deal and the mayor’s office denied any scheme. "
    )
    loaded_terms("warm up the lexicon cache")
    for size in (5_000, 150_000):
        text = (sentence * (size // len(sentence) + 1))[:size]
        runs = []
        for _ in range(10):
            t0 = time.perf_counter()
            found = loaded_terms(text, ["fair deal"])
            runs.append(time.perf_counter() - t0)
        print(f"loaded_terms on {size:>7,} chars: {min(runs) * 1000:6.2f} ms ({len(found)} terms)")


if __name__ == "__main__":  # python -m tests.test_neutrality
    _print_timings()


# --- the curated list (worker/loaded_terms.txt) --------------------------------------------------


@pytest.mark.parametrize(
    "word", ["phoney", "outplays", "sabotage", "fool", "fiasco", "bullied", "charade", "pushover"]
)
def test_framing_words_vader_misses_or_rates_mild_are_loaded(word: str) -> None:
    assert terms(f"It was {word}.") == [word]


def test_each_is_reported_when_the_summary_says_it_in_its_own_voice() -> None:
    summary = (
        "Putin outplays the president with phoney talks. His delegation tried to sabotage them, "
        "and the meeting was a fiasco. He played the president for a fool and must be bullied."
    )
    assert issues(summary) == ["outplays", "phoney", "sabotage", "fiasco", "fool", "bullied"]


def test_the_same_words_attributed_or_quoted_are_fine() -> None:
    summary = (
        "The author argues that Putin outplays the president with phoney talks. "
        "The author writes: “the meeting was a fiasco, and he must be bullied.”"
    )
    assert issues(summary) == []


def test_curated_list_has_words_and_phrases_and_no_comment_text() -> None:
    curated = curated_terms()
    assert "phoney" in curated and "slush fund" in curated and "bad faith" in curated
    assert not any(t.startswith("#") or "---" in t or t == "[phrases]" for t in curated)
    assert all(t == t.lower() for t in curated)
