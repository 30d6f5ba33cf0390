"""Versioned prompt templates. Change a template -> bump PROMPT_VERSION (it is in every result)."""

import re
from functools import cache
from importlib.resources import files

PROMPT_VERSION = "summary-v1"

# Lines that look like our delimiters inside the article could end the data block early.
_DELIMITER_LOOKALIKE = re.compile(r"<\s*(/?)\s*article\s*>", re.IGNORECASE)


@cache
def template(part: str) -> str:
    return (files(__package__) / f"{PROMPT_VERSION}.{part}.txt").read_text(encoding="utf-8")


def neutralize_delimiters(text: str) -> str:
    """Replace `<article>`/`</article>` look-alikes with visibly different brackets."""
    return _DELIMITER_LOOKALIKE.sub(lambda m: f"‹{m.group(1)}article›", text)


def build_messages(
    text: str, *, title: str | None, source: str | None, language: str | None
) -> list[dict[str, str]]:
    """System rules, then the article as data in a delimited user message."""
    output_language = (
        f"the language with code '{language}'" if language else "the article's own language"
    )
    # str.format never re-reads what it inserted, so braces in an article stay inert.
    system = template("system").format(output_language=output_language)
    user = template("user").format(
        title=neutralize_delimiters(title or "(none)"),
        source=neutralize_delimiters(source or "(none)"),
        article=neutralize_delimiters(text),
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
