"""Tests for the offline token estimate and the map-reduce chunker (worker/chunking.py)."""

import random
import re
import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.chunking import Chunk, estimate_tokens, split_into_chunks

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_VOCABULARY = """
the of and to in a is that for it as was with be by on not he this are or his from at which but
have an they you were her she there been one all we their has would when if more will council
water river farmers plan vote city people said year new government officials report study money
public because however policy price market local state national argument evidence critics
supporters proposal budget hospital school residents economy question decision months weeks
percent million district committee spokesperson environmental agriculture development
infrastructure investigation transportation
"""
WORDS = _VOCABULARY.split()


def make_sentence(rng: random.Random, n_words: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n_words)]
    for i in range(3, n_words - 2, rng.randint(6, 12)):
        words[i] += ","
    if rng.random() < 0.2:
        words.insert(rng.randrange(n_words), str(rng.randint(2, 2_000_000)))
    end = rng.choice([".", ".", ".", "?", "!", '."', ".”"])
    return " ".join(words).capitalize() + end


def make_paragraph(rng: random.Random, n_sentences: int) -> str:
    return " ".join(make_sentence(rng, rng.randint(6, 30)) for _ in range(n_sentences))


def make_essay(seed: int = 7, size: int = 120_000) -> str:
    """Paragraphs of varying length (1 to 40 sentences) separated by blank lines."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    length = 0
    while length < size:
        n = rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 40])
        paragraphs.append(make_paragraph(rng, n))
        length += len(paragraphs[-1]) + 2
    return "\n\n".join(paragraphs)[:size].rstrip() + "."


def check_invariants(text: str, chunks: list[Chunk], max_tokens: int, overlap: int) -> None:
    """What every chunking must satisfy."""
    if not text.strip():
        assert chunks == []
        return
    assert chunks, "non-blank text gives at least one chunk"
    for i, c in enumerate(chunks):
        assert c.index == i
        assert 0 <= c.start < c.end <= len(text)
        assert text[c.start : c.end] == c.text
        assert c.text == c.text.strip(), "chunks start and end on non-whitespace"
        assert estimate_tokens(c.text) <= max_tokens
    # order: strictly increasing starts and ends
    for a, b in pairwise(chunks):
        assert a.start < b.start
        assert a.end < b.end
    # coverage: only whitespace is left out
    assert text[: chunks[0].start].strip() == ""
    assert text[chunks[-1].end :].strip() == ""
    for a, b in pairwise(chunks):
        if b.start >= a.end:
            assert text[a.end : b.start].strip() == ""
        else:
            assert estimate_tokens(text[b.start : a.end]) <= overlap
    if overlap == 0:
        for a, b in pairwise(chunks):
            assert b.start >= a.end
    if estimate_tokens(text) <= max_tokens:
        assert len(chunks) == 1


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"\S(?:.*?\S)?(?=\n\n|\Z)", text, re.S)]


# --------------------------------------------------------------------------------------------
# estimate_tokens
# --------------------------------------------------------------------------------------------

ORDINARY_PARAGRAPH = (
    "When the council met on Tuesday night, most of the people in the room had come to talk "
    "about the new bus line. Some of them said it would help them get to work on time, while "
    "others were worried that the buses would be loud and that the street would become more "
    "dangerous for their children. The mayor listened for a long time and then said that the "
    "city would look at the plan again before it made a final choice in the spring, after a "
    "study of the traffic on the road and the next few weeks ahead."
)


def test_estimate_english_prose_is_near_cl100k() -> None:
    assert len(ORDINARY_PARAGRAPH.split()) == 100
    # cl100k gives about 1.2-1.35 tokens per word on plain prose; the estimate errs high.
    assert 100 <= estimate_tokens(ORDINARY_PARAGRAPH) <= 160
    # ~4 characters per token (OpenAI's rule of thumb), a little fewer here
    assert 3.0 <= len(ORDINARY_PARAGRAPH) / estimate_tokens(ORDINARY_PARAGRAPH) <= 4.5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        (" ", 0),
        ("Hello, world!", 4),  # cl100k: "Hello" "," " world" "!"
        ("How are you?", 4),
        ("a", 1),
        ("the", 1),
        ("\n\n", 1),
        ("a\n\nb", 3),
        ("a" * 300, 100),  # not a word: 1 per 3
    ],
)
def test_estimate_known_values(text: str, expected: int) -> None:
    assert estimate_tokens(text) == expected


def test_estimate_long_words_cost_more() -> None:
    assert estimate_tokens("cat") == 1
    assert estimate_tokens("environmental") == 3
    assert estimate_tokens("antidisestablishmentarianism") >= 6


def test_estimate_digits_in_groups_of_three() -> None:
    assert estimate_tokens("7") == 1
    assert estimate_tokens("123") == 1
    assert estimate_tokens("1234") == 2
    assert estimate_tokens("1234567") == 3
    assert estimate_tokens("3" * 3000) == 1000
    assert estimate_tokens("in 2024") == 4  # "in" " " "202" "4"
    assert estimate_tokens("12.5 13.75") == 7


def test_estimate_cjk_about_one_per_character() -> None:
    chinese = "我们今天讨论经济政策"
    assert estimate_tokens(chinese) == len(chinese)
    assert estimate_tokens(chinese + "。") == len(chinese) + 1
    japanese = "きょうはいいてんきですね"
    assert estimate_tokens(japanese) == len(japanese)
    korean = "안녕하세요"
    assert estimate_tokens(korean) == len(korean)
    mixed = "GPT模型"
    assert estimate_tokens(mixed) == 1 + 2


def test_estimate_other_scripts() -> None:
    assert estimate_tokens("Привет мир") == 3 + 2  # Cyrillic: 1 per 2 characters
    assert estimate_tokens("café") == 2  # Latin with diacritics: 1 per 3 characters
    greek = "Καλημέρα"
    assert estimate_tokens(greek) == len(greek)  # other scripts: 1 per character
    assert estimate_tokens("👍🏽") == 2


def test_estimate_is_fast() -> None:
    text = make_essay(size=150_000)
    estimate_tokens(text)
    started = time.perf_counter()
    estimate_tokens(text)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.2  # ~8 ms on a laptop; loose for slow CI


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_estimate_properties(text: str) -> None:
    tokens = estimate_tokens(text)
    assert 0 <= tokens <= len(text)  # no character costs more than 1 token
    assert len(text) <= 8 * tokens + 1  # and every 8 characters cost at least 1


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1).filter(lambda s: not any(c.isspace() for c in s)))
def test_estimate_monotone_on_whitespace_free_text(text: str) -> None:
    costs = [estimate_tokens(text[:i]) for i in range(len(text) + 1)]
    assert costs == sorted(costs)


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=200))
def test_estimate_ascii_fast_path_agrees_with_the_general_one(text: str) -> None:
    # A trailing ideographic space costs 1 and sends the text down the non-ASCII path.
    assert estimate_tokens(text + "\u3000") == estimate_tokens(text) + 1


_NON_BLANK = st.text(min_size=1).map(str.strip).filter(bool)


@settings(max_examples=300, deadline=None)
@given(_NON_BLANK, st.text(st.sampled_from(" \n\t\r\u3000"), min_size=1), _NON_BLANK)
def test_estimate_additive_across_whitespace(a: str, ws: str, b: str) -> None:
    gap = estimate_tokens(ws + b[0]) - estimate_tokens(b[0])
    assert estimate_tokens(a + ws + b) == estimate_tokens(a) + gap + estimate_tokens(b)


# --------------------------------------------------------------------------------------------
# split_into_chunks
# --------------------------------------------------------------------------------------------


def test_long_essay_chunks_on_paragraphs_with_overlap() -> None:
    text = make_essay()
    assert 119_000 <= len(text) <= 120_001
    max_tokens, overlap = 4000, 200
    chunks = split_into_chunks(text, max_tokens, overlap)
    check_invariants(text, chunks, max_tokens, overlap)
    assert 7 <= len(chunks) <= 12

    paragraphs = paragraph_spans(text)
    starts = {s for s, _ in paragraphs}
    ends = {e for _, e in paragraphs}
    biggest = max(estimate_tokens(text[s:e]) for s, e in paragraphs)
    assert biggest < max_tokens - overlap  # so every chunk can end at a paragraph break
    assert chunks[0].start == 0

    for prev, nxt in pairwise(chunks):
        # chunks end at paragraph breaks, and the chunk was closed because the next paragraph
        # did not fit
        assert prev.end in ends
        assert estimate_tokens(prev.text) > max_tokens - biggest - 2
        # consecutive chunks overlap by at most `overlap` tokens ...
        assert nxt.start < prev.end
        assert 0 < estimate_tokens(text[nxt.start : prev.end]) <= overlap
        last_paragraph = max(s for s in starts if s < prev.end)
        if estimate_tokens(text[last_paragraph : prev.end]) <= overlap:
            # ... of whole paragraphs, as many as fit
            assert nxt.start in starts
            before = [s for s in starts if prev.start <= s < nxt.start]
            if before:
                assert estimate_tokens(text[max(before) : prev.end]) > overlap
        else:
            # ... or of the last paragraph's trailing sentences if it alone is too large
            assert last_paragraph < nxt.start
            assert text[nxt.start - 2] in '.!?"”'
    assert chunks[-1].end == len(text)


def test_text_within_budget_is_one_chunk() -> None:
    text = "\n\n  " + ORDINARY_PARAGRAPH + "\n\nSecond paragraph.\n"
    chunks = split_into_chunks(text, 4000, 200)
    assert len(chunks) == 1
    assert chunks[0].text == text.strip()
    assert text[chunks[0].start : chunks[0].end] == chunks[0].text


@pytest.mark.parametrize("text", ["", " ", "\n\n\t  \n"])
def test_blank_text_gives_no_chunks(text: str) -> None:
    assert split_into_chunks(text, 100, 10) == []


@pytest.mark.parametrize(
    ("max_tokens", "overlap"), [(0, 0), (-5, 0), (10, 10), (10, 11), (10, -1), (1, 1)]
)
def test_guards(max_tokens: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        split_into_chunks("some text", max_tokens, overlap)


def test_guards_accept_smallest_budget() -> None:
    chunks = split_into_chunks("one two three", 1, 0)
    assert [c.text for c in chunks] == ["one", "two", "three"]


def test_giant_paragraph_is_split_on_sentences() -> None:
    rng = random.Random(3)
    sentences = [make_sentence(rng, rng.randint(5, 25)) for _ in range(300)]
    text = " ".join(sentences)  # one paragraph, no line breaks
    max_tokens, overlap = 500, 60
    chunks = split_into_chunks(text, max_tokens, overlap)
    check_invariants(text, chunks, max_tokens, overlap)
    assert len(chunks) > 5
    sentence_starts = {0} | {m.end() for m in re.finditer(r"[.!?][\"”]?\s+", text)}
    sentence_ends = {
        m.start() + len(m.group().rstrip()) for m in re.finditer(r"[.!?][\"”]?(\s+|$)", text)
    }
    for c in chunks:
        assert c.start in sentence_starts
        assert c.end in sentence_ends
    for prev, nxt in pairwise(chunks):
        assert nxt.start < prev.end  # overlap by whole sentences


def test_last_paragraph_larger_than_overlap_overlaps_by_sentences() -> None:
    rng = random.Random(11)
    paragraphs = [make_paragraph(rng, 12) for _ in range(12)]  # ~250 tokens each
    text = "\n\n".join(paragraphs)
    chunks = split_into_chunks(text, 1000, 80)
    check_invariants(text, chunks, 1000, 80)
    paragraph_starts = {s for s, _ in paragraph_spans(text)}
    for prev, nxt in pairwise(chunks):
        assert nxt.start < prev.end
        assert nxt.start not in paragraph_starts  # a whole paragraph would be too much
        assert text[nxt.start - 2 : nxt.start - 1] in {".", "?", "!", '"', "”"}


def test_giant_sentence_is_split_on_whitespace() -> None:
    rng = random.Random(5)
    text = " ".join(rng.choice(WORDS) for _ in range(3000))  # no punctuation at all
    chunks = split_into_chunks(text, 300, 30)
    check_invariants(text, chunks, 300, 30)
    for c in chunks:
        assert c.start == 0 or text[c.start - 1] == " "
        assert c.end == len(text) or text[c.end] == " "
    for prev, nxt in pairwise(chunks):
        assert nxt.start < prev.end


def test_whitespace_free_run_is_cut_between_characters() -> None:
    url = "https://example.org/" + "abc123XYZ-_" * 500
    text = f"See {url} for details.\n\nNext paragraph."
    chunks = split_into_chunks(text, 200, 20)
    check_invariants(text, chunks, 200, 20)
    assert len(chunks) > 5


def test_cjk_without_spaces_splits_after_full_stops() -> None:
    text = "".join(f"这是第{i}个句子，内容关于经济政策。" for i in range(400))
    chunks = split_into_chunks(text, 200, 30)
    check_invariants(text, chunks, 200, 30)
    for c in chunks:
        assert c.text.endswith("。")
        assert c.start == 0 or text[c.start - 1] == "。"


def test_single_newlines_separate_paragraphs_without_blank_lines() -> None:
    rng = random.Random(9)
    lines = [make_paragraph(rng, rng.randint(1, 4)) for _ in range(200)]
    text = "\n".join(lines)
    chunks = split_into_chunks(text, 800, 100)
    check_invariants(text, chunks, 800, 100)
    line_starts = {0} | {m.end() for m in re.finditer("\n", text)}
    for c in chunks:
        # chunks end at line breaks; they start at one too, or in the overlap at a sentence
        assert c.end == len(text) or text[c.end] == "\n"
        assert c.start in line_starts or text[c.start - 2] in '.!?"”'
    assert sum(c.start in line_starts for c in chunks) > len(chunks) // 2


def test_zero_overlap_gives_disjoint_chunks() -> None:
    text = make_essay(seed=2, size=30_000)
    chunks = split_into_chunks(text, 1000, 0)
    check_invariants(text, chunks, 1000, 0)
    assert len(chunks) > 3


def test_crlf_and_trailing_spaces_on_blank_lines() -> None:
    text = "First paragraph here.\r\n \r\nSecond paragraph here.\r\n\r\nThird one."
    chunks = split_into_chunks(text, 5, 0)
    assert [c.text for c in chunks] == [
        "First paragraph here.",
        "Second paragraph here.",
        "Third one.",
    ]


# Text with plenty of separators, sentence ends, CJK, digits and arbitrary characters.
_CHARS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(list(' \n\t.!?,"”’)。！abc xyz 0123456789文字')),
    st.sampled_from(["\n\n", ". ", "\r\n", "  "]),
)


@settings(max_examples=400, deadline=None)
@given(
    text=st.lists(_CHARS, max_size=300).map("".join) | st.text(max_size=300),
    budget=st.integers(1, 60).flatmap(lambda m: st.tuples(st.just(m), st.integers(0, m - 1))),
)
def test_chunking_properties(text: str, budget: tuple[int, int]) -> None:
    """For arbitrary text every chunk is an exact slice, within budget, in order, and together
    the chunks cover every non-whitespace character.  The budget holds without exception: the
    estimate never prices a single character above 1 token, so even an indivisible run is cut
    between characters."""
    max_tokens, overlap = budget
    check_invariants(text, split_into_chunks(text, max_tokens, overlap), max_tokens, overlap)


def first_unit_end(text: str, pos: int, max_tokens: int) -> int:
    """Where the first packing unit after `pos` ends in a generated essay: its paragraph if that
    fits, else its first sentence (generated sentences always fit)."""
    paragraph_end = text.find("\n\n", pos)
    paragraph_end = len(text) if paragraph_end < 0 else paragraph_end
    if estimate_tokens(text[pos:paragraph_end]) <= max_tokens:
        return paragraph_end
    m = re.compile(r"[.!?][\"”]?(?=\s|$)").search(text, pos)
    assert m
    return m.end()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 10_000), max_tokens=st.integers(120, 800))
def test_chunking_properties_on_prose(seed: int, max_tokens: int) -> None:
    text = make_essay(seed=seed, size=8_000)
    overlap = max_tokens // 10
    chunks = split_into_chunks(text, max_tokens, overlap)
    check_invariants(text, chunks, max_tokens, overlap)
    for prev, nxt in pairwise(chunks):
        if nxt.start < prev.end:
            continue
        # No overlap only if not even the last word fits, alone or with the next unit.
        last_word = prev.start + prev.text.rindex(" ") + 1
        next_unit_end = first_unit_end(text, nxt.start, max_tokens)
        assert (
            estimate_tokens(text[last_word : prev.end]) > overlap
            or estimate_tokens(text[last_word:next_unit_end]) > max_tokens
        )


def test_chunking_is_fast() -> None:
    text = make_essay(size=150_000)
    started = time.perf_counter()
    split_into_chunks(text, 4000, 200)
    assert time.perf_counter() - started < 1.0  # ~20 ms on a laptop
