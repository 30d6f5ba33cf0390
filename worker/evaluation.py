"""`evenhand eval DIR`: every article of a folder through the configured provider, with the
figures we judge a model by."""

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kernel.config import Settings
from worker.errors import PipelineError
from worker.pipeline import summarize_article
from worker.prepare import SourceArticle

ARTICLE_SUFFIXES = {".txt": "text", ".html": "html", ".htm": "html"}


@dataclass
class EvalRow:
    article: str
    error: str = ""
    quotes: int = 0
    verified: int = 0
    loaded_in_source: int = 0
    loaded_in_summary: int = 0
    lines_removed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    llm_calls: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def evaluate_file(path: Path, settings: Settings) -> EvalRow:
    article = SourceArticle(
        input_kind=ARTICLE_SUFFIXES[path.suffix.lower()],
        raw_text=path.read_text(encoding="utf-8"),
        title=path.stem,
    )
    row = EvalRow(article=path.name)
    started = time.perf_counter()
    try:
        result = summarize_article(article, settings)
    except PipelineError as exc:
        row.error = exc.code
    else:
        row.quotes, row.verified = result.grounding.quotes, result.grounding.verified
        row.loaded_in_source = len(result.loaded_language)
        row.loaded_in_summary = len(result.neutrality.summary_loaded_terms)
        row.lines_removed = result.cleaning.lines_removed
        row.prompt_tokens = result.usage.prompt_tokens
        row.completion_tokens = result.usage.completion_tokens
        row.llm_calls = result.usage.llm_calls
    row.seconds = time.perf_counter() - started
    return row


def evaluate_folder(folder: Path, settings: Settings) -> list[EvalRow]:
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in ARTICLE_SUFFIXES)
    return [evaluate_file(path, settings) for path in paths]


def total(rows: list[EvalRow]) -> EvalRow:
    overall = EvalRow(article="overall", error=f"{sum(bool(r.error) for r in rows)} failed")
    for field in (
        "quotes", "verified", "loaded_in_source", "loaded_in_summary", "lines_removed",
        "prompt_tokens", "completion_tokens", "llm_calls", "seconds",
    ):  # fmt: skip
        setattr(overall, field, sum(getattr(r, field) for r in rows))
    return overall
