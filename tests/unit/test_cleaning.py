"""Tests for worker.cleaning: fixtures, conservative behaviour, and Hypothesis properties."""

import time
import unicodedata
from pathlib import Path
from unittest import mock

import pytest
import trafilatura
from hypothesis import given, settings
from hypothesis import strategies as st

from testkit.fixtures import FIXTURES
from worker import cleaning
from worker.cleaning import CleanedText, clean_text, normalize_text


def read(name: str) -> str:
    # newline="" keeps CRLF and lone CR exactly as stored.
    with open(FIXTURES / name, encoding="utf-8", newline="") as fh:
        return fh.read()


def lines_of(result: CleanedText) -> list[str]:
    return result.text.split("\n")


def assert_figures(raw: str, result: CleanedText, lines_removed: int) -> None:
    assert result.chars_in == len(raw)
    assert result.chars_kept == len(result.text)
    assert result.lines_removed == lines_removed


def assert_line_level(raw: str, result: CleanedText) -> None:
    """Every kept line is a whole line of the normalized input, in the original order."""
    normalized = iter(normalize_text(raw).split("\n"))
    for line in lines_of(result):
        if line:
            assert any(line.strip() == candidate.strip() for candidate in normalized), line


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------

OPINION_HEADLINE = (
    "ruth albescu: the harbour tunnel toll is a tax on the people who can least afford it"
)
OPINION_BOILERPLATE = [
    "advertisement",
    "ADVERTISEMENT",
    "Advertisement",
    "story continues below",
    "drivers queue at the east portal of the harbour tunnel during the morning rush in port "
    "callow on feb. 4, 2025. photo by tomas reyna /getty images",
    "share this article in your social network",
    "Share on Facebook",
    "Tweet",
    "Email",
    "Sign up for our newsletter: the Courier Daily, every weekday morning.",
    "port callow courier",
    "ruth albescu",
    "read more about the author",
    "comments",
]
OPINION_KEPT = [
    "council is asking night-shift workers to pay for its waterfront boondoggle",
    "it is a shameless cash grab that asks the city’s lowest-paid workers to pay for a decade "
    "of reckless planning at city hall.",
    "a toll without a transit alternative is not a congestion policy; it is simply a tax, and a "
    "regressive one at that.",
    "the council adopted the rosy number anyway, because the rosy number was the only one that "
    "closed the gap in the budget.",
    # Real sentences that mention boilerplate words stay.
    "it spent $600,000 on an advertisement campaign showing smiling cyclists",
    "nobody in the east flats believed that advertisement.",
    "the mayor’s comments at tuesday’s meeting were respectful in tone but dismissive in "
    "substance.",
    "voters in the east flats will remember in october who sent them the bill.",
]


def test_opinion_boilerplate() -> None:
    raw = read("opinion_boilerplate.txt")
    result = clean_text(raw)
    out = lines_of(result)
    for line in OPINION_BOILERPLATE:
        assert line not in out, line
    assert not any(line.startswith("ruth albescu is a freelance writer") for line in out)
    assert not any(line.startswith("the courier is committed to") for line in out)
    assert not any(line.startswith("we use cookies") for line in out)
    for sentence in OPINION_KEPT:
        assert sentence in result.text, sentence
    assert result.text.count(OPINION_HEADLINE) == 1
    assert out[0] == OPINION_HEADLINE
    assert out[-1].endswith("who sent them the bill.")
    # 4 ad markers, 2 "story continues below", caption, 4 share lines, newsletter, outlet line,
    # 2 name lines, bio, read more, comments header, comment policy, cookie notice, headline copy.
    assert_figures(raw, result, lines_removed=21)
    assert_line_level(raw, result)


def test_news_multiple_sides() -> None:
    raw = read("news_multiple_sides.txt")
    result = clean_text(raw)
    out = lines_of(result)
    for line in [
        "Advertisement",
        "Share this story",
        "Share on Facebook",
        "Tweet",
        "Related: Valdera drought plan leaves small towns scrambling",
        "Sign up for The Dispatch Daily newsletter",
        "We use cookies to improve your experience on our site. Accept cookies",
    ]:
        assert line not in out, line
    assert not any("(Photo: Keiko Marchetti" in line for line in out)
    for sentence in [
        "Marisol Quintero-Haas, who chairs the authority's board, said the refinery would bring "
        "about 400 permanent jobs",
        '"They are asking us to ration water so a company from out of state can have first call '
        'on it," Pettigrew said.',
        "According to Kovalenko, the proposed withdrawal would amount to roughly 3 per cent of "
        "average summer flow, but far more in a dry year.",
        '"We are not asking for first call on anything," Adeyemi-Lund said.',
        "According to a memo circulated to commissioners last week",
        # The last sentence mentions comments; it is not a comment policy.
        "Written comments can be submitted until March 28.",
    ]:
        assert sentence in result.text, sentence
    # Mastheads and bylines are not recognised (a known limitation): they are kept.
    assert "By Keiko Marchetti" in out
    assert_figures(raw, result, lines_removed=9)
    assert_line_level(raw, result)


ARTICLE_PAGE_SENTENCES = [
    "City council will decide next week whether to demolish the Lantern Street market hall",
    "Measuring it by its slowest hours is a convenient way to make a thriving place look like a "
    "failing one.",
    "Adding 600 more spaces will not bring shoppers downtown;",
    "Council is being asked to spend nine times as much to replace something that works with "
    "something nobody asked for.",
    "It can outlive this one too, if council lets it.",
]


def test_article_page_through_trafilatura() -> None:
    """The pipeline's HTML path: trafilatura (as in worker.prepare) then the cleaner."""
    html = read("article_page.html")
    extracted = trafilatura.extract(
        html, include_comments=False, include_tables=False, favor_precision=True
    )
    assert extracted
    result = clean_text(extracted)
    for sentence in ARTICLE_PAGE_SENTENCES:
        assert sentence in result.text, sentence
    for gone in ["cookies", "Related stories", "valleyreader88", "Fix the roof", "All rights"]:
        assert gone not in result.text, gone
    assert_figures(extracted, result, lines_removed=0)


def test_article_page_naively_flattened() -> None:
    """Tags stripped without a DOM: the cleaner removes the line-shaped boilerplate."""
    import html as html_lib
    import re

    page = read("article_page.html")
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", "", page, flags=re.DOTALL)
    flat = html_lib.unescape(re.sub(r"<[^>]+>", "\n", page))
    result = clean_text(flat)
    out = [line.strip() for line in lines_of(result)]
    for sentence in ARTICLE_PAGE_SENTENCES:
        assert sentence in result.text, sentence
    for line in [
        "Subscribe",
        "Accept cookies",
        "Manage cookies",
        "Share on Facebook",
        "Tweet",
        "Email",
        "Related stories",
        "Comments",
        "Cookie policy",
    ]:
        assert line not in out, line
    assert "We use cookies" not in result.text
    assert "Comments are moderated" not in result.text  # policy right under the header
    # Without a DOM, nav labels and reader comments cannot be told from text (limitation).
    assert "Fix the roof and leave the market alone." in out
    assert_line_level(flat, result)


def test_unicode_mess() -> None:
    raw = read("unicode_mess.txt")
    assert raw.startswith("\ufeff") and "\r\n" in raw and "\u200b" in raw  # the fixture is messy
    result = clean_text(raw)
    text = result.text
    invisible = {"\ufeff", "\u200b", "\u200c", "\u200d", "\u2060", "\u00ad", "\u200e", "\u200f"}
    invisible |= {chr(cp) for cp in range(0x202A, 0x202F)} | {
        chr(cp) for cp in range(0x2066, 0x206A)
    }
    assert not invisible & set(text)
    assert all(unicodedata.category(ch) not in {"Cf", "Cc", "Zs"} or ch in " \n" for ch in text)
    assert "\r" not in text and "\u00a0" not in text and "\u2009" not in text
    assert "\n\n\n" not in text
    assert all(line == line.rstrip() for line in lines_of(result))
    # Kept: typographic quotes, dashes, emoji, RTL names; words rejoined after invisible chars.
    for kept in ["“", "”", "‘", "’", "—", "–", "🍜🏮", "🗓️", "€40"]:
        assert kept in text, kept
    assert "ليلى حداد" in text and "נועה כהן" in text
    assert "Night market pilot wins narrow approval" in lines_of(result)
    assert "on Quay Street for a six-month trial — a compromise that pleased almost no one." in text
    assert "who proposed the pilot." in text
    assert "Stallholders will pay" in text
    assert "A spokesperson for the traders’ guild" in text
    assert "The pilot begins on June 1 and will be reviewed in December" in text
    # "Adver<ZWSP>tisement" and "Share<NBSP>on Facebook" are caught once normalized.
    assert "Advertisement" not in text and "Share on Facebook" not in text
    assert_figures(raw, result, lines_removed=2)
    assert result.chars_kept < result.chars_in


def test_non_english_column() -> None:
    raw = read("non_english_column.txt")
    result = clean_text(raw)
    out = lines_of(result)
    for line in [
        "Publicidad",
        "Compartir en Facebook",
        "Compartir en X",
        "Lee también: El presupuesto municipal de 2025, partida a partida",
        "Sigue leyendo",
        "Carmen Ibáñez Soler es periodista y columnista de El Heraldo del Río.",
        "Suscríbete a nuestro boletín",
        "Comentarios",
    ]:
        assert line not in out, line
    for sentence in [
        "Las bibliotecas de barrio no son un lujo",
        "Es una elección política, y es una mala elección.",
        "Quien diga que no hay alternativas no ha mirado las cuentas con atención.",
        "Lo que no debería hacer es cerrar la puerta a quienes más la necesitan y llamarlo "
        "eficiencia.",
    ]:
        assert sentence in result.text, sentence
    assert_figures(raw, result, lines_removed=9)
    assert_line_level(raw, result)


def test_boilerplate_only() -> None:
    raw = read("boilerplate_only.txt")
    result = clean_text(raw)
    assert result.text.strip() == ""
    assert_figures(raw, result, lines_removed=11)
    assert result.chars_kept == 0


def test_single_sentence() -> None:
    raw = read("single_sentence.txt")
    result = clean_text(raw)
    assert result.text == raw.strip()
    assert_figures(raw, result, lines_removed=0)
    assert result.chars_kept == result.chars_in - 1  # the final newline


def test_prompt_injection_is_left_to_the_summarizer() -> None:
    """The cleaner is not a security layer: the injection text reaches the summarizer unchanged,
    which must treat it as article content (and never output the canaries)."""
    raw = read("prompt_injection.txt")
    result = clean_text(raw)
    assert result.text == normalize_text(raw).strip()
    assert "CANARY-7f3a9" in result.text and "CANARY-b21c4" in result.text
    assert "</article>" in lines_of(result)
    assert "Means-tested discounts, like the low-income pass pilot" in result.text
    assert_figures(raw, result, lines_removed=0)


# --------------------------------------------------------------------------------------------
# normalize_text and conservative behaviour
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\r\nb\rc\u2028d\u2029e\x85f", "a\nb\nc\nd\ne\nf"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),  # NFC
        ("\ufeffzero\u200bwidth\u200c\u200dtext\u2060", "zerowidthtext"),
        ("soft\u00adhyphen", "softhyphen"),
        ("\u202ebidi\u202c \u2066iso\u2069 \u200emark\u200f", "bidi iso mark"),
        ("a\u00a0b\u2009c\u3000d\u202fe", "a b c d e"),
        ("trailing   \nspaces\t\n", "trailing\nspaces\n"),
        ("one\n\n\n\n\ntwo\n\n\nthree\n\nfour", "one\n\ntwo\n\nthree\n\nfour"),
        ("  \n \u00a0 \n\nx", "\n\nx"),
        ("Keep “quotes” ‘these’ — dashes – and 🙂 MiXeD case", None),
        ("nul\x00 and bell\x07", "nul and bell"),
    ],
)
def test_normalize_text(raw: str, expected: str | None) -> None:
    assert normalize_text(raw) == (raw if expected is None else expected)


@pytest.mark.parametrize(
    "sentence",
    [
        "The agency said its advertisement budget doubled last year.",
        "Share prices fell 4 per cent on Tuesday.",
        "A photo by a local teenager went viral last week.",
        "Follow the money and the picture changes.",
        "Related to this, the council delayed its vote.",
        "Read more books, the minister urged.",
        "Comments from residents were overwhelmingly negative.",
        "Email was the main channel for the complaints.",
        "Subscribers to the old plan will keep their rates.",
        "The story continues to unfold in the courts.",
        "Readers who sign up early get a discount, the company said.",
        "Auf Wiedersehen, sagte der Bürgermeister zum Abschied.",
        "File photographs of the site were shown to the court.",
    ],
)
def test_sentences_that_mention_boilerplate_words_are_kept(sentence: str) -> None:
    raw = f"Headline\n\n{sentence}\n\nAnother paragraph follows here.\n\n{sentence}"
    result = clean_text(raw)
    assert result.text.count(sentence) == 2
    assert result.lines_removed == 0


@pytest.mark.parametrize(
    "last",
    [
        "The mayor is a former journalist at the Ledger, and it shows.",
        "My colleague is a reporter at the Ledger.",
        "The mayor's comments were civil, if not respectful.",
        "She said the plan would fail.",
    ],
)
def test_trailer_rules_do_not_eat_a_last_paragraph(last: str) -> None:
    raw = f"Headline\n\nFirst paragraph of the story.\n\n{last}\n\nAdvertisement\n"
    result = clean_text(raw)
    assert lines_of(result)[-1] == last
    assert result.lines_removed == 1


def test_bio_and_policy_in_the_body_are_kept() -> None:
    bio = "Jane Doe is a reporter at the Daily Ledger."
    policy = "We moderate comments to keep the forum civil, our editor said in the meeting."
    raw = f"Headline\n\n{bio}\n{policy}\n\nThe story goes on after that.\n"
    result = clean_text(raw)
    assert bio in result.text and policy in result.text
    assert result.lines_removed == 0


def test_bio_continued_on_following_lines_is_dropped() -> None:
    raw = (
        "Headline\n\nThe article's last sentence.\n\n"
        "Jane Doe is a senior fellow at the Institute for Valley Studies.\n"
        "She is the author of two books on water policy.\n"
        "Her column appears every Tuesday.\n"
    )
    result = clean_text(raw)
    assert result.text == "Headline\n\nThe article's last sentence."
    assert result.lines_removed == 3


def test_nfc_can_lengthen_text() -> None:
    """chars_kept <= chars_in is not a law: NFC expands a few characters (e.g. U+0958)."""
    result = clean_text("\u0958")
    assert result.chars_in == 1 and result.chars_kept == 2


def test_speed_well_under_one_ms_per_kb() -> None:
    raw = read("opinion_boilerplate.txt")
    raw = (raw * 2)[:5000]
    clean_text(raw)  # warm the lazy character map
    best = min(_timed(raw) for _ in range(7))
    assert best < 5 * 0.001 / 2, f"{best * 1000:.2f} ms for 5,000 characters"


def _timed(raw: str) -> float:
    start = time.perf_counter()
    clean_text(raw)
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Hypothesis properties
# --------------------------------------------------------------------------------------------

# Words for article-like sentences: no boilerplate keywords, no bio verbs ("is", "es", ...).
VOCAB = [
    "council", "river", "budget", "farmers", "said", "the", "plan", "would", "raise", "costs",
    "valley", "water", "vote", "residents", "argue", "that", "new", "road", "school", "market",
    "many", "critics", "support", "delay", "tuesday", "because", "and", "but", "of", "to", "in",
    "€40", "2025", "“quoted”", "—", "naïve", "façade", "Zürich", "niños", "über", "policy",
    "mayor’s", "forty-two", "per", "cent", "could", "not", "without", "after", "before",
]  # fmt: skip
BLOCKED = (
    "advert", "share", "tweet", "email", "e-mail", "print", "follow", "subscri", "sign", "regist",
    "newsletter", "comment", "photo", "getty", "cookie", "read", "related", "recommend", "continu",
    "sponsor", "anzeige", "publici", "lesen", "leyendo", "lire", "image", "picture", "credit",
    "foto", "bild", "/", " is ", " was ", " are ", " has ", " es ", " ist ", " est ", "writes",
)  # fmt: skip
LETTERS = "abcdefghijklmnopqrstuvwxyzàáâäçèéêëíñóöúüß"
word = st.one_of(st.sampled_from(VOCAB), st.text(alphabet=LETTERS, min_size=1, max_size=12))


def _sentence(words: list[str]) -> str:
    return " ".join(words).capitalize() + "."


sentence = (
    st.lists(word, min_size=6, max_size=18)
    .map(_sentence)
    .filter(lambda s: not any(b in f" {s.lower()} " for b in BLOCKED))
)
paragraph = st.lists(sentence, min_size=1, max_size=4).map(" ".join)

GENERIC_BOILERPLATE = [
    "advertisement",
    "ADVERTISEMENT",
    "Advertisement",
    "Anzeige",
    "Publicidad",
    "Publicité",
    "story continues below",
    "Article continues below advertisement",
    "share this article in your social network",
    "Share on Facebook",
    "Tweet",
    "Email",
    "Sign up for our newsletter",
    "Follow us on Instagram",
    "Comments",
    "Join the conversation",
    "read more about the author",
    "Related: Council votes on harbour toll",
    "Recommended",
    "Lesen Sie auch: Warum die Stadt spart",
    "Sigue leyendo",
    "Photo by Jane Doe/Getty Images",
    "A crowd outside city hall on Monday. (Photo: John Roe/Reuters)",
    "File photo",
    "We use cookies to improve your experience. Accept cookies",
]
TRAILER = [
    "Jane Doe is a freelance writer and columnist at the Valley Ledger.",
    "read more about the author",
    "comments",
    "The Ledger welcomes civil discussion; comments are moderated, so please be respectful.",
]


@settings(max_examples=200)
@given(
    paragraphs=st.lists(paragraph, min_size=1, max_size=8),
    boilerplate=st.lists(st.sampled_from(GENERIC_BOILERPLATE), max_size=10),
    positions=st.lists(st.integers(min_value=0, max_value=20), max_size=10),
    blank_lines=st.booleans(),
    trailer=st.booleans(),
)
def test_article_sentences_survive_interleaved_boilerplate(
    paragraphs: list[str],
    boilerplate: list[str],
    positions: list[int],
    blank_lines: bool,
    trailer: bool,
) -> None:
    lines = list(paragraphs)
    for line, pos in zip(boilerplate, positions + [len(lines)] * len(boilerplate), strict=False):
        lines.insert(min(pos, len(lines)), line)
    if trailer:
        lines += TRAILER
    raw = ("\n\n" if blank_lines else "\n").join(lines)

    result = clean_text(raw)

    for p in paragraphs:
        assert p in result.text
    out = set(lines_of(result))
    for line in boilerplate + (TRAILER if trailer else []):
        assert line not in out, line
    # A paragraph equal to the first one is dropped as a repeated headline.
    repeats = sum(1 for p in paragraphs[1:] if p == paragraphs[0] and len(p) <= 200)
    removed = len(boilerplate) + (len(TRAILER) if trailer else 0) + repeats
    assert_figures(raw, result, lines_removed=removed)


messy_text = st.text(
    alphabet=st.sampled_from(
        [
            *"ab é\u0301\u0323ǖ\u0958\r\n\t\u2028\u2029\x85\u00a0\u2000\u200b\u200d\u202e",
            *"\u2066\ufeff\u00ad“—🙂ل",
        ]
    )
)


@settings(max_examples=300)
@given(st.one_of(st.text(), messy_text))
def test_normalize_text_is_idempotent(raw: str) -> None:
    once = normalize_text(raw)
    assert normalize_text(once) == once


@settings(max_examples=300)
@given(st.one_of(st.text(), messy_text))
def test_clean_text_never_raises(raw: str) -> None:
    result = clean_text(raw)
    assert result.chars_in == len(raw)
    assert result.chars_kept == len(result.text)
    assert result.lines_removed >= 0
    # Normalization deletes characters and maps others one-to-one, except NFC, which can expand a
    # few characters; the decomposed length bounds that, and for NFD input chars_kept <= chars_in.
    assert result.chars_kept <= len(unicodedata.normalize("NFD", raw))
    if unicodedata.is_normalized("NFD", raw):
        assert result.chars_kept <= result.chars_in
    assert_line_level(raw, result)


@given(st.text(alphabet=st.characters(codec="ascii")))
def test_ascii_never_grows(raw: str) -> None:
    result = clean_text(raw)
    assert result.chars_kept <= result.chars_in


@given(st.text(alphabet=st.characters(codec="ascii")))
def test_ascii_fast_path_agrees_with_the_general_one(raw: str) -> None:
    fast = normalize_text(raw)
    with mock.patch.object(cleaning, "_PLAIN_ASCII", b""):  # every ASCII text takes the slow path
        assert normalize_text(raw) == fast


# --- consent banners, newsletters, link lists, login prompts and footers ---------------------

GOLD = Path(__file__).resolve().parents[2] / "testkit" / "fixtures" / "gold"


def test_a_page_of_consent_newsletter_lists_and_footer_only_has_no_article_text() -> None:
    raw = (GOLD / "boilerplate_only_page.txt").read_text(encoding="utf-8")
    result = clean_text(raw)
    assert result.text == ""
    assert result.lines_removed == len([line for line in raw.splitlines() if line.strip()])


def test_article_inside_consent_and_newsletter_blocks_keeps_every_sentence() -> None:
    raw = (GOLD / "news_clinic_cookies.txt").read_text(encoding="utf-8")
    result = clean_text(raw)
    kept = set(lines_of(result))
    report = raw[raw.index("The Pine Valley") : raw.index("Most read")].splitlines()
    paragraphs = [line for line in report if line.startswith(("The ", '"', "Residents"))]
    assert len(paragraphs) == 8
    for line in paragraphs:
        assert line in kept, line
    for line in (
        "We value your privacy",
        "Accept all",
        "Facebook · X · Email · Copy link",
        "Enter your email address",
        "1. Highway 9 closed after rockslide",
        "Photos: the valley's first snowfall",
        "You have 3 free articles remaining this month.",
        "About us | Contact | Advertise | Careers",
        "© 2025 Valley Media Inc. All rights reserved.",
    ):
        assert line not in kept, line
    assert lines_of(result)[0] == "Rural clinic to close its emergency ward at night"


@pytest.mark.parametrize(
    "line",
    [
        "Privacy Policy · Terms of Use · Cookie Settings · Accessibility",
        "About us | Contact | Careers | Advertise with us",
        "Facebook · X · WhatsApp · Email",
        "© 2024 The Valley Ledger. All rights reserved.",
        "Skip to main content",
        "Sign in to your account",
        "Create a free account to keep reading.",
        "Already a subscriber? Sign in",
        "Get the Morning Briefing delivered to your inbox every weekday.",
        "We and our 120 partners store and/or access information on a device, such as cookies.",
        "Reject all",
    ],
)
def test_consent_login_share_and_footer_lines_are_boilerplate(line: str) -> None:
    raw = f"Headline\n\nThe council met on Tuesday to discuss the budget.\n{line}\nIt adjourned at nine.\n"
    result = clean_text(raw)
    assert line not in lines_of(result)
    assert result.lines_removed == 1


@pytest.mark.parametrize(
    "sentence",
    [
        "Residents were asked to accept all of the changes without a vote.",
        "Our partners at the university process the samples every week.",
        "She said she would sign in at the front desk before the hearing.",
        "The trending topic at the meeting was the price of water.",
        "Copyright lawyers for the publisher said the case would go to trial.",
    ],
)
def test_sentences_with_consent_and_login_words_are_kept(sentence: str) -> None:
    result = clean_text(f"Headline\n\n{sentence}\n")
    assert sentence in result.text


def test_items_under_a_most_read_header_go_but_the_article_after_a_blank_line_stays() -> None:
    raw = (
        "Headline\n\nThe first paragraph of the story.\n\nMost read\n1. Ferry fares rise\n"
        "Council delays parking vote\n\nThe story goes on after the list.\n"
    )
    result = clean_text(raw)
    assert [line for line in lines_of(result) if line] == [
        "Headline",
        "The first paragraph of the story.",
        "The story goes on after the list.",
    ]
    assert result.lines_removed == 3


def test_a_short_note_without_boilerplate_is_left_alone() -> None:
    assert clean_text("Council meets Tuesday").text == "Council meets Tuesday"


def test_the_outlet_of_a_photo_credit_is_dropped_from_the_trailer() -> None:
    raw = (
        "Headline\n\na bus leaves the depot. photo by ana silva/metro courier\n"
        "The story of the strike, told in one sentence.\nmetro courier\n"
    )
    assert [line for line in lines_of(clean_text(raw)) if line] == [
        "Headline",
        "The story of the strike, told in one sentence.",
    ]
