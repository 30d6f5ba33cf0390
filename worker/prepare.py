"""The prepare stage: the article's text, fetched when it is a URL, its main content taken out of
HTML, and its boilerplate removed."""

from dataclasses import dataclass

import trafilatura

from kernel.config import Settings
from kernel.schemas import CleaningPublic
from worker.cleaning import CleanedText, clean_text
from worker.errors import PipelineError
from worker.fetch import FetchPolicy, fetch_article


@dataclass(frozen=True)
class SourceArticle:
    """What the pipeline needs of an article, detached from any database session."""

    input_kind: str  # text | html | url
    raw_text: str
    url: str | None = None
    title: str | None = None
    source: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Prepared:
    cleaned: CleanedText
    fetched: str | None  # the page fetched for URL input, kept as the article's raw text


def fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        timeout=settings.fetch_timeout,
        max_bytes=settings.fetch_max_bytes,
        allow_private=settings.fetch_allow_private,
    )


def extract_text(kind: str, raw: str) -> str:
    """The article's text, with an HTML page reduced to its main content (trafilatura)."""
    if kind == "html":
        extracted = trafilatura.extract(
            raw, include_comments=False, include_tables=False, favor_precision=True
        )
        return extracted or ""
    return raw


def prepare(article: SourceArticle, settings: Settings) -> Prepared:
    kind, raw, fetched = article.input_kind, article.raw_text, None
    if kind == "url":
        assert article.url is not None
        page = fetch_article(article.url, fetch_policy(settings))
        raw = fetched = page.text
        kind = "text" if page.content_type == "text/plain" else "html"
    cleaned = clean_text(extract_text(kind, raw))
    if not cleaned.text.strip():
        raise PipelineError(
            "no_article_text",
            "Nothing of the article was left after removing boilerplate; send the article's text.",
        )
    figures = CleanedText(
        text=cleaned.text,
        chars_in=len(raw),
        chars_kept=cleaned.chars_kept,
        lines_removed=cleaned.lines_removed,
    )
    return Prepared(cleaned=figures, fetched=fetched)


def cleaning_figures(cleaned: CleanedText) -> CleaningPublic:
    return CleaningPublic(
        chars_in=cleaned.chars_in,
        chars_kept=cleaned.chars_kept,
        lines_removed=cleaned.lines_removed,
    )
