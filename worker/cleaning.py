"""Clean scraped article text: Unicode normalisation, then line-level boilerplate removal.

Why this is hand-written rather than trafilatura or jusText: those tools decide what is boilerplate
from an HTML DOM (tag names, link density, block structure). The text that reaches this module has
usually been flattened already (a scraper's plain-text dump, a paste, or trafilatura's own output),
so the DOM signals are gone. What is left are recognisable *lines*: "advertisement", "story
continues below", share-button labels, photo credits, the author-bio trailer, "read more about the
author" and the outlet's comment policy, interleaved with the article's paragraphs.

Rules, all conservative, because dropping a sentence of the article is worse than keeping an ad:

* Lines are dropped whole or kept whole; nothing inside a line is ever edited (after
  `normalize_text`), so an article sentence cannot be cut in half.
* Generic patterns only fire on short lines (each list below carries its own length limit) and most
  are anchored at both ends, so a sentence that merely mentions "advertisement" is kept.
* Trailer rules (author bio, comment policy, the author's name and outlet repeated as bare lines)
  only fire after the last substantive line, scanning backwards from the end. A comment policy is
  also dropped directly after a "Comments" header.
* A headline repeated verbatim later in the text is dropped (the first copy is kept).

Cost: regexes are compiled once at import, each line is tested against a handful of combined
patterns (the long-line ones behind a cheap substring check), and the per-character Unicode map is
filled lazily; a 5,000-character article cleans in about 0.3 ms. Only the standard library is
imported.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["CleanedText", "clean_text", "normalize_text"]


@dataclass(frozen=True)
class CleanedText:
    text: str  # the clean article text
    chars_in: int  # len of the raw input
    chars_kept: int  # len(text)
    lines_removed: int  # boilerplate lines dropped (not counting blank lines)


# --------------------------------------------------------------------------------------------
# Unicode normalisation
# --------------------------------------------------------------------------------------------

# Line separators other than "\n" ("\r\n" is replaced first).
_LINE_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


class _CharMap(dict[str, str]):
    """What each character becomes, computed on first sight and cached.

    Category Cf (format: BOM/U+FEFF, zero-width space/joiners U+200B..U+200D, word joiner U+2060,
    soft hyphen, bidi marks/embeddings/overrides/isolates U+200E/F, U+202A..E, U+2066..9, ...) and
    control characters other than tab and newline are deleted; Unicode spaces (category Zs: NBSP,
    thin and ideographic spaces, ...) become a plain space; everything else is kept. Filling the
    map lazily avoids scanning all 1.1M code points at import.
    """

    def __missing__(self, ch: str) -> str:
        category = unicodedata.category(ch)
        if category == "Cf" or category == "Cc":
            value = ""
        elif category == "Zs":
            value = " "
        else:
            value = ch
        self[ch] = value
        return value


_CHAR_MAP = _CharMap({ch: "\n" for ch in _LINE_BREAKS})
_CHAR_MAP.update({"\n": "\n", "\t": "\t", " ": " "})
# The ASCII characters _CHAR_MAP keeps as they are.
_PLAIN_ASCII = b"\t\n" + bytes(range(0x20, 0x7F))

_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_RUN = re.compile(r"\n{3,}")  # two or more blank lines -> one blank line


def normalize_text(raw: str) -> str:
    """Unicode normalisation only: no line is dropped and letter case is unchanged.

    NFC; invisible format and control characters removed; Unicode spaces -> " "; every line
    ending -> "\\n"; trailing spaces stripped; runs of blank lines collapsed to one blank line.
    Typographic quotes, dashes and emoji are kept. Idempotent.
    """
    text = raw.replace("\r\n", "\n")
    # One str.replace per distinct character that changes (usually none or a handful): much
    # faster than a per-character str.translate over the whole article. ASCII text without
    # control characters (other than tab and newline) has none, which bytes.translate tells
    # faster than collecting the text's distinct characters.
    if not text.isascii() or text.encode("ascii").translate(None, _PLAIN_ASCII):
        for ch in set(text):
            value = _CHAR_MAP[ch]
            if value != ch:
                text = text.replace(ch, value)
    # NFC never produces a format, control or non-ASCII space character, so this order is final.
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        text = _TRAILING_SPACE.sub("", text)
    if "\n\n\n" in text:
        text = _BLANK_RUN.sub("\n\n", text)
    return text


# --------------------------------------------------------------------------------------------
# Line patterns. Each list is joined into one case-insensitive regex that must match the whole
# (stripped) line, and is only tried on lines no longer than the list's limit.
# --------------------------------------------------------------------------------------------

_MARKER_LIMIT = 60
_MARKERS = [
    # Ad markers, alone on their line, possibly decorated: "ADVERTISEMENT", "- Anzeige -", "Ad 2".
    r"[\W_]*(?:advertisements?|advertising|advert|ads?|sponsored(?: content)?|paid (?:content|post)"
    r"|promoted(?: content)?|partner content)[\W_]*\d*[\W_]*",
    # ... in German, Spanish, French, Italian, Dutch.
    r"[\W_]*(?:anzeige|werbung|publicidad|publicit[ée]|pubblicit[àa]|advertentie)[\W_]*\d*[\W_]*",
    # Bare share / save button labels.
    r"(?:share|share (?:story|article|this)|tweet|e-?mail|print|copy link|copy url|link copied"
    r"|facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|bluesky|threads|flipboard|messenger"
    r"|telegram|save|save (?:article|story)|gift (?:this )?article|listen to (?:this )?article"
    r"|compartir|teilen|partager|artikel teilen|beitrag teilen|compartir (?:art[íi]culo|noticia)"
    r"|partager (?:l'article|cet article))\W*",
    # Comment-section headers and notices.
    r"\d*\s*comments?\s*(?:\(\d+\))?\W*",
    r"(?:join|start|enter) the (?:conversation|discussion|debate)\W*",
    r"(?:leave|post|add|write|view|show|hide|read|see|load) (?:a |all |the |more )?(?:\d+ )?comments?\W*",
    r"(?:comments? policy|community guidelines|conversation|be the first to comment)\W*",
    r"(?:kommentare|kommentieren|comentarios|comentar|commentaires|commenter)\s*(?:\(\d+\))?\W*",
    # "Related stories" style section labels.
    r"(?:related|related (?:stories|articles|content|coverage|reading|links|topics|videos?)"
    r"|recommended(?: for you| reading| stories| articles| videos)?|trending(?: now)?"
    r"|most (?:read|popular|viewed)|top stories|latest (?:news|stories)|editor'?s picks"
    r"|more stories|you (?:may|might) also like|further reading|see also|also read|read next"
    r"|up next|what to read next)\W*",
    # Cookie banner buttons and footer links.
    r"(?:accept|reject|manage) (?:all )?cookies\W*|cookie (?:policy|settings|preferences)\W*",
    # Consent banner headings and buttons.
    r"(?:we value your privacy|your privacy(?: choices| settings)?|privacy (?:settings|choices)"
    r"|(?:accept|reject|allow|deny|refuse|decline) all|accept|reject|i agree|i accept|agree"
    r"|manage (?:my |your )?(?:preferences|consent|settings|options|choices)|more options"
    r"|do not sell(?: or share)? my personal information|consent|save (?:preferences|choices))\W*",
    # Navigation and login.
    r"(?:skip to (?:main )?content|skip navigation|menu|search|home|sections|back to top)\W*",
    r"(?:log ?in|log ?out|sign ?in|sign ?out|sign ?up|register|my account|create (?:a |an )?"
    r"(?:free )?account|already a subscriber\W*(?:sign|log) ?in)\W*",
]

_SHORT_LIMIT = 80
_SHORT = [
    # Share lines: "share this article in your social network", "Share on Facebook".
    r"share (?:this|the) (?:article|story|post|page|video)\b.*",
    r"share (?:on|via|to|with) (?:facebook|twitter|x|linkedin|whatsapp|e-?mail|reddit|pinterest"
    r"|bluesky|threads|messenger|telegram)\W*",
    r"(?:compartir en|partager sur) \w+\W*|auf \w+ teilen\W*",
    # Follow-us lines: "Follow us on Instagram", "Follow Jane Doe on X".
    r"follow (?:us|me)\b.*",
    r"follow (?!the\b)[\w.'’@ -]{1,40} on (?:twitter|x|facebook|instagram|tiktok|youtube|bluesky"
    r"|threads|linkedin|mastodon)\b.{0,40}",
    r"(?:s[ií]guenos|folgen sie uns|suivez-nous)\b.*",
]

# Link labels of share bars and footers, for lines made only of them ("Facebook · X · Email",
# "About us | Contact | Careers").
_LINK_LABEL = (
    r"(?:share|facebook|twitter|x|linkedin|whatsapp|reddit|pinterest|bluesky|threads|flipboard"
    r"|messenger|telegram|e-?mail|print|copy link|copy url|save|about(?: us)?|contact(?: us)?"
    r"|careers|jobs|advertise(?: with us)?|privacy(?: policy| notice| settings)?"
    r"|terms(?: of (?:use|service))?|terms and conditions|cookie (?:policy|settings|preferences)"
    r"|cookies|accessibility|site ?map|help|faq|corrections|subscriptions?|newsletters?"
    r"|masthead|impressum|datenschutz|aviso legal|mentions l[ée]gales|rss|archives?"
    r"|do not sell my (?:personal )?info(?:rmation)?|your privacy choices)"
)
_LINK_BAR = rf"{_LINK_LABEL}(?:\s*[·|•,/–-]\s*{_LINK_LABEL})+\W*"

_MEDIUM_LIMIT = 200
_MEDIUM = [
    # Share bars and footer link rows; copyright lines.
    _LINK_BAR,
    r"(?:©|\(c\)|copyright)\s*(?:\d{4}\b).*|all rights reserved\W*",
    # Login and paywall prompts.
    r"(?:sign|log) ?in to (?:your account|continue|keep reading|read)\b.*",
    r"create (?:a |an )?(?:free )?account\b.{0,60}",
    r"you (?:have|'ve) (?:reached your (?:limit|maximum) of|\d+|one|no) (?:free )?(?:articles?|stories)\b.*",
    r"(?:subscribe|sign up|register) (?:now )?to (?:continue|keep) reading\b.*",
    # Newsletter prompts: "Get the Morning Briefing delivered to your inbox", "Enter your email".
    r"(?:get|receive) .{0,60}\b(?:delivered )?(?:to|in) your inbox\b.*",
    r"enter your e-?mail(?: address)?\W*",
    # "Story continues below" interstitials.
    r"(?:the |this |your )?(?:story|article|text|content|report) continues (?:below|after|under)\b.*",
    r"this advertisement has not loaded yet\b.*",
    r"continue reading (?:below|the main story|after (?:the|this) ad(?:vertisement)?)\b.*",
    r"skip (?:advertisement|ad)\W*|scroll (?:down )?to continue(?: with content| reading)?\W*",
    r"la suite (?:apr[èe]s|sous) (?:cette |la )?(?:publicit[ée]|annonce)\W*",
    r"(?:artikel|text) (?:geht|wird) (?:unter|nach) der anzeige (?:weiter|fortgesetzt)\W*"
    r"|weiter nach der anzeige\W*",
    r"(?:el )?(?:art[íi]culo|texto) (?:contin[úu]a|sigue) (?:debajo|abajo|tras la publicidad)\W*",
    # Newsletter / subscription prompts.
    r"(?:sign ?up|register|subscribe)\b.{0,80}\b(?:newsletters?|briefing|digest|inbox|boletín)\b.*",
    r"sign up to receive\b.*",
    r"subscribe(?: now| today| here)?\W*",
    r"(?:get|receive) (?:our|the) .{0,60}\bnewsletters?\b.*",
    r"newsletters?\W*",
    r"(?:thanks|thank you) for (?:signing up|subscribing)\b.*",
    r"by (?:clicking|signing up|subscribing|entering your e-?mail)\b.*\b(?:consent|agree|terms|privacy)\b.*",
    r"(?:already a subscriber|already have an account)\b.*",
    r"(?:suscr[ií]bete|suscr[ií]base|reg[ií]strate)\b.*",
    r"(?:newsletter abonnieren|jetzt abonnieren|abonnieren sie)\b.*",
    r"(?:abonnez-vous|inscrivez-vous)\b.*",
    # Link lines: "read more about the author", "Related: <headline>", "Recommended: <headline>".
    r"read more(?: about the author| about this (?:topic|story|author)| here"
    r"| (?:stories|articles|columns) (?:by|from|about) [^.!?]{1,50}"
    r"| (?:from|on|at) [^.!?]{1,50})?[\s:»›>|→…]*",
    r"(?:related|recommended|also read|read also|see also|read next|read more|more|watch|listen"
    r"|editor'?s pick)\s*[:»›|→]\s*\S.*",
    # ... in German, Spanish, French: "Lesen Sie auch: ...", "Sigue leyendo", "Lire aussi".
    r"(?:lesen sie (?:auch|mehr|hier)|mehr zum thema|weiterlesen|auch interessant"
    r"|das könnte sie auch interessieren|sigue leyendo|lee también|lea también|leer más"
    r"|(?:también )?te puede interesar|le puede interesar|(?:à |a )?lire aussi|lire la suite"
    r"|voir aussi|à lire également)\b.*",
]

_COOKIE_LIMIT = 400
_COOKIES = [
    # Cookie notices: "We use cookies to ...", "By continuing to browse this site ...".
    r".*\bwe(?: and our partners)? use cookies\b.*",
    r".*\b(?:this|our) (?:site|website) uses cookies\b.*",
    r".*\b(?:accept|reject|manage|customi[sz]e|allow) (?:all |optional |our )?cookies\b.*",
    r".*\bby continuing to (?:use|browse|visit) (?:this|our|the) (?:site|website)\b.*",
    r".*\b(?:wir verwenden|diese website verwendet|wir nutzen) cookies\b.*",
    r".*\b(?:utilizamos|usamos|este sitio (?:web )?utiliza) cookies\b.*",
    r".*\b(?:nous utilisons des|ce site utilise des) cookies\b.*",
]

_CONSENT_LIMIT = 700
_CONSENT = [
    # Consent banner text: "We and our 214 partners store and/or access information on a
    # device ...", "You can accept or reject these uses at any time ...".
    r".*\bpartners\b.*\b(?:store|access|process|use)\b.*\b(?:cookies|personal data|device)\b.*",
    r".*\b(?:accept|reject|withdraw|change)\b.{0,40}\b(?:these uses|your consent|consent)\b.*",
    r".*\byou consent to\b.{0,80}\b(?:cookies|use|processing|tracking)\b.*",
    r".*\b(?:personalised|personalized) (?:ads|advertising|content)\b.*\bconsent\b.*",
]

_PHOTO_LIMIT = 600
_PHOTO = [
    # Photo captions ending in a credit: "... photo by Jane Doe /Getty Images" (no sentence end).
    r".*\bphoto(?:s|graph)? by\b[^!?]{0,80}(?<![.!?])",
    r".*/\s*getty images\b.*",
    r".*\b(?:via|for) getty images\b.*",
    r".*\bafp via getty\b.*",
    # "... (Photo: Jane Doe/Reuters)", "(File photo)", "File photo of ...".
    r".*\(\s*(?:photo|photograph|foto|image|picture)s?\s*:.*",
    r".*\(file photo\).*",
    r"file photo\b.*",
    r".*\bfile photo\W*",
    # Credit lines: "Photo: Jane Doe/Reuters", "Foto: dpa".
    r"(?:photo|photograph|foto|bild|image|picture|credit|photo credit|crédit photo|crédito)s?"
    r"\s*:\s*[^.!?]{0,80}",
    # A line that ends in an agency credit: ".../Reuters", ".../The Canadian Press".
    r".*/\s*(?:reuters|ap photo|afp|the canadian press|shutterstock|alamy|dpa|efe|epa|bloomberg"
    r"|istock|getty)\s*\)?\W*",
]


def _rule(
    limit: int, patterns: list[str], needles: tuple[str, ...] = ()
) -> tuple[int, tuple[str, ...], re.Pattern[str]]:
    """(length limit, cheap substring gate on the lower-cased line, combined regex)."""
    return limit, needles, re.compile("(?:" + "|".join(patterns) + ")", re.IGNORECASE | re.DOTALL)


_LINE_RULES = [
    _rule(_MARKER_LIMIT, _MARKERS),
    _rule(_SHORT_LIMIT, _SHORT),
    _rule(_MEDIUM_LIMIT, _MEDIUM),
    # The long-line patterns are only tried when a keyword they all need is present.
    _rule(_COOKIE_LIMIT, _COOKIES, ("cookie",)),
    _rule(_CONSENT_LIMIT, _CONSENT, ("partners", "consent", "these uses", "personal data")),
    _rule(
        _PHOTO_LIMIT,
        _PHOTO,
        ("photo", "foto", "getty", "image", "picture", "credit", "crédit", "bild", "/"),
    ),
]

_HEADLINE_LIMIT = 200  # a first line longer than this is a paragraph, not a headline

# ---- trailer rules (only after the last substantive line) ----

# A comment-policy paragraph mentions comments AND moderation / civility / guidelines ...
_POLICY_LIMIT = 1500
_POLICY_RULE = re.compile(
    r"moderat|moderier|moderad|mod[ée]r|\bcivil\b|civility|community guidelines|community standards"
    r"|respectful|respektvoll|respetuos|respectueu|netiquette|house rules",
    re.IGNORECASE,
)
# ... AND speaks as the site to its readers (so "the mayor's comments were respectful" is kept).
_POLICY_VOICE = re.compile(
    r"\b(?:we|our|us|please|readers?|users?|forum|posting|guidelines|wir|unsere?|nuestr[oa]s?"
    r"|nous|nos|notre)\b",
    re.IGNORECASE,
)

# Author bio: "<name> is a freelance writer and columnist at <outlet>.", "<name> es periodista y
# columnista de <outlet>.", "<name> ist Redakteurin bei <outlet>.". The name is 1-5 words and may
# not be a pronoun, article or title (so "The mayor is a former journalist" is not a bio).
_BIO_LIMIT = 800
_NAME = (
    r"(?P<name>(?!(?:the|this|that|these|those|it|he|she|they|we|i|you|my|your|his|her|our|their"
    r"|a|an|one|no|every|each|who|what|which|there|mayor|premier|minister|president|senator"
    r"|councillor|governor|el|la|este|esta|der|die|das|er|sie|es|le|il|elle)\b)"
    r"[^\W\d_][\w.'’-]*(?: [\w.'’-]+){0,4}),?"
)
_EN_ROLES = (
    r"(?:writer|columnist|journalist|reporter|correspondent|editor|contributor|commentator|author"
    r"|novelist|blogger|essayist|critic|professor|lecturer|fellow|researcher|analyst|economist"
    r"|historian|podcaster|broadcaster|freelancer)s?"
)


def _named(group: str, rest: str) -> str:
    return _NAME.replace("(?P<name>", f"(?P<{group}>") + rest


_BIO = re.compile(
    "|".join(
        [
            # English: "<name> is a (freelance) writer / columnist / senior fellow ..."
            _named(
                "name", r" (?:is|was|has been) (?:a|an|the)\b[^.;:!?]{0,80}?\b" + _EN_ROLES + r"\b"
            ),
            _named("name2", r" writes (?:about|for|on|a (?:weekly |monthly |regular )?column)\b"),
            r"(?:the )?(?:author|writer)s? (?:is|are) (?:a|an|the)\b",
            # Spanish, German, French.
            _named(
                "name3",
                r" es (?:periodista|columnista|escritora?|profesora?|economista|investigadora?"
                r"|ensayista|editora?|corresponsal|analista|historiadora?|autora?)\b",
            ),
            _named(
                "name4",
                r" ist (?:freie[rn]? )?(?:journalist|kolumnist|redakteur|autor|korrespondent"
                r"|schriftsteller|publizist|professor)(?:in)?\b",
            ),
            _named(
                "name5",
                r" est (?:journaliste|chroniqueur|chroniqueuse|[ée]crivaine?|professeure?"
                r"|[ée]ditorialiste|chercheur|chercheuse|auteur|autrice|[ée]conomiste)\b",
            ),
        ]
    ),
    re.IGNORECASE,
)
_BIO_VERBS = frozenset({"is", "was", "has", "are", "writes", "es", "ist", "est"})
# The outlet named in a bio: "... at <outlet>", "... for <outlet>", "... de <outlet>".
_BIO_OUTLET = re.compile(
    r"\b(?:at|for|with|de|del|bei|für|pour|à)\s+(?P<outlet>[^.,;:()]{2,60}?)\s*(?:[.,;:()]|$)",
    re.IGNORECASE,
)
# A bio continued on the next line(s) of the same paragraph: "She covered ... ".
_PRONOUN_START = re.compile(
    r"(?:she|he|they|her|his|their|ella|él|sie|er|elle|il)\b", re.IGNORECASE
)
# Byline decorations stripped before comparing a line with the bio's name or outlet.
_BYLINE_DECOR = re.compile(r"^(?:by|por|von|par)\s+|^[\W_]+|[\W_]+$", re.IGNORECASE)


# "Comments", "12 comments", "Join the conversation" (a subset of _MARKERS).
_MARKERS_COMMENT_HEADER = re.compile(
    r"\d*\s*comments?\s*(?:\(\d+\))?\W*|(?:join|start|enter) the (?:conversation|discussion)\W*"
    r"|kommentare\W*|comentarios\W*|commentaires\W*",
    re.IGNORECASE,
)


def _is_boilerplate_line(line: str) -> bool:
    """`line` is stripped and non-empty."""
    n = len(line)
    lower = line.lower()
    return any(
        n <= limit and (not needles or any(k in lower for k in needles)) and rule.fullmatch(line)
        for limit, needles, rule in _LINE_RULES
    )


def _is_comment_policy(line: str) -> bool:
    if len(line) > _POLICY_LIMIT:
        return False
    lower = line.lower()
    return (
        ("comment" in lower or "kommentar" in lower or "comentario" in lower)
        and _POLICY_RULE.search(line) is not None
        and _POLICY_VOICE.search(line) is not None
    )


def _is_bio(line: str) -> bool:
    if len(line) > _BIO_LIMIT:
        return False
    # Cheap gate: the verb of every bio pattern is among the first six words (name <= 5 words).
    words = line[:200].lower().replace(",", " ").split(None, 7)[1:7]
    if not _BIO_VERBS.intersection(words):
        return False
    return _BIO.match(line) is not None


def _key(line: str) -> str:
    return _BYLINE_DECOR.sub("", line.strip().casefold()).strip()


def _bio_names(line: str) -> set[str]:
    """The author's name and outlet named in a bio line, as comparison keys."""
    names: set[str] = set()
    match = _BIO.match(line)
    if match is None:
        return names
    for group in ("name", "name2", "name3", "name4", "name5"):
        if match.group(group):
            names.add(_key(match.group(group)))
    outlet = _BIO_OUTLET.search(line, match.end())
    if outlet is not None:
        key = _key(outlet.group("outlet"))
        names.add(key)
        names.add(key.removeprefix("the ").removeprefix("el ").removeprefix("la "))
    names.discard("")
    return names


# The outlet at the end of a photo credit: ".../Metro Courier".
_CREDIT_OUTLET = re.compile(
    r"\bphoto(?:s|graph)? by\b[^/]{1,60}/\s*([^/]{2,40}?)\W*$", re.IGNORECASE
)


def _mark_trailer(stripped: list[str], drop: list[bool]) -> None:
    """Drop the bio / comment-policy / name lines that follow the last substantive line (the
    names: the author's and outlet's from a bio, the outlet of a photo credit)."""
    names: set[str] = set()
    for line, dropped in zip(stripped, drop, strict=True):
        credit = _CREDIT_OUTLET.search(line) if dropped and line else None
        if credit:
            names.add(_key(credit.group(1)))
    for line in stripped:
        if line and _is_bio(line):
            names |= _bio_names(line)
    i = len(stripped) - 1
    while i >= 0:
        line = stripped[i]
        if not line or drop[i]:
            i -= 1
            continue
        if _is_comment_policy(line) or (names and _key(line) in names):
            drop[i] = True
            i -= 1
            continue
        # A bio paragraph, possibly continued on following lines that start with a pronoun.
        j = i
        while (
            j > 0 and stripped[j] and not _is_bio(stripped[j]) and _PRONOUN_START.match(stripped[j])
        ):
            j -= 1
        if stripped[j] and _is_bio(stripped[j]):
            for k in range(j, i + 1):
                drop[k] = True
            i = j - 1
            continue
        break


# Headers of link lists ("Most read", "Trending", ...): a subset of _MARKERS.
_LIST_HEADER = re.compile(
    r"(?:related(?: (?:stories|articles|content|coverage|reading|links|topics))?|recommended"
    r"(?: for you| reading| stories| articles)?|trending(?: now)?|most (?:read|popular|viewed)"
    r"|top stories|latest (?:news|stories)|editor'?s picks|more stories|more from [\w ]{1,40}"
    r"|you (?:may|might) also like|further reading|read next|up next|what to read next"
    r"|meistgelesen|lo más leído|les plus lus)\W*",
    re.IGNORECASE,
)
_LIST_ITEM_LIMIT = 120
_NUMBERED_ITEM = re.compile(r"\d{1,2}[.)]\s+\S")
_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*$")


def _is_prose(line: str) -> bool:
    """A line that reads as (part of) an article: a sentence of some length."""
    words = len(line.split())
    return words >= 15 or (words >= 3 and _SENTENCE_END.search(line) is not None)


def _mark_list_sections(stripped: list[str], drop: list[bool]) -> None:
    """Drop the items under a "Most read" / "Trending" header: the lines right after it that
    are headline-like (short, numbered or without a closing full stop), up to a blank line."""
    i = 0
    while i < len(stripped):
        if stripped[i] and _LIST_HEADER.fullmatch(stripped[i]):
            j = i + 1
            while j < len(stripped) and stripped[j]:
                item = stripped[j]
                headline_like = len(item) <= _LIST_ITEM_LIMIT and (
                    _NUMBERED_ITEM.match(item) or not _SENTENCE_END.search(item)
                )
                if not (headline_like or drop[j]):
                    break
                drop[j] = True
                j += 1
            i = j
        else:
            i += 1


def clean_text(raw: str) -> CleanedText:
    """`normalize_text`, then drop boilerplate lines (see the module docstring)."""
    lines = normalize_text(raw).split("\n")
    stripped = [line.strip() for line in lines]
    drop = [False] * len(lines)

    headline: str | None = None
    previous = ""  # the previous non-blank line
    for i, line in enumerate(stripped):
        if not line:
            continue
        if _is_boilerplate_line(line):
            drop[i] = True
        elif headline is None:
            headline = line if len(line) <= _HEADLINE_LIMIT else ""
        elif line == headline:
            drop[i] = True  # the headline repeated verbatim
        elif _is_comment_policy(line) and _MARKERS_COMMENT_HEADER.fullmatch(previous):
            drop[i] = True  # a comment policy right under a "Comments" header
        previous = line

    _mark_list_sections(stripped, drop)
    _mark_trailer(stripped, drop)
    if any(drop) and not any(
        line and not dropped and _is_prose(line)
        for line, dropped in zip(stripped, drop, strict=True)
    ):
        # Boilerplate with leftovers (a site name, a stray link) but no sentence: not an article.
        drop = [bool(line) for line in stripped]

    kept = [line for line, dropped in zip(lines, drop, strict=True) if not dropped]
    text = "\n".join(kept)
    if "\n\n\n" in text:  # a dropped line between blank ones; the search is much cheaper
        text = _BLANK_RUN.sub("\n\n", text)
    text = text.strip()
    return CleanedText(
        text=text,
        chars_in=len(raw),
        chars_kept=len(text),
        lines_removed=sum(drop),
    )
