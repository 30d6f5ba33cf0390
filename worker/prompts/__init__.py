"""Versioned prompt templates. Change a template -> bump PROMPT_VERSION (it is in every result).

The article always travels as data inside `<article>` delimiters in a user message, never in the
system prompt; look-alikes of the delimiters inside it are neutralised first.
"""

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

PROMPT_VERSION = "summary-v2"

_DELIMITER_LOOKALIKE = re.compile(r"<\s*(/?)\s*article\s*>", re.IGNORECASE)
_STRAIGHT_PAIR = re.compile(r'"([^"\n]*)"')

Messages = list[dict[str, str]]


@cache
def template(part: str) -> str:
    return (files(__package__) / f"{PROMPT_VERSION}.{part}.txt").read_text(encoding="utf-8")


def neutralize_delimiters(text: str) -> str:
    """Replace `<article>`/`</article>` look-alikes with visibly different brackets."""
    return _DELIMITER_LOOKALIKE.sub(lambda m: f"‹{m.group(1)}article›", text)


def curly_quotes(text: str) -> str:
    """Straight double quotes as typographic ones. A quote the model copies then needs no JSON
    escape: small models under a grammar close the string at the first straight one instead.
    Grounding normalises quotation marks, so the copied quote still verifies."""
    paired = _STRAIGHT_PAIR.sub(lambda m: f"“{m.group(1)}”", text)
    return paired.replace('"', "”")


def system_message(language: str | None, part: str = "system") -> dict[str, str]:
    """The rules of a conversation (the `part` template: the summary's, or the support check's)."""
    output_language = (
        f"the language with code '{language}'" if language else "the article's own language"
    )
    # str.format never re-reads what it inserted, so braces in an article stay inert.
    return {"role": "system", "content": template(part).format(output_language=output_language)}


def with_schema(system: dict[str, str], schema: dict[str, Any]) -> dict[str, str]:
    """The system message with the answer's JSON schema appended, for providers without strict
    json_schema."""
    text = "\nThe JSON schema of the answer:\n```json\n" + json.dumps(schema) + "\n```\n"
    return {"role": "system", "content": system["content"] + text}


def _user(
    template_name: str, text: str, title: str | None, source: str | None, **fields: Any
) -> dict[str, str]:
    content = template(template_name).format(
        title=neutralize_delimiters(title or "(none)"),
        source=neutralize_delimiters(source or "(none)"),
        article=curly_quotes(neutralize_delimiters(text)),
        **fields,
    )
    return {"role": "user", "content": content}


def build_messages(
    text: str, *, title: str | None, source: str | None, language: str | None
) -> Messages:
    """System rules, then the whole article as data in a delimited user message."""
    return [system_message(language), _user("user", text, title, source)]


def build_map_messages(
    text: str, *, part: int, parts: int, title: str | None, source: str | None, language: str | None
) -> Messages:
    """One part of a long article (map step)."""
    return [system_message(language), _user("map", text, title, source, part=part, parts=parts)]


def build_reduce_messages(
    point_lines: list[str], *, title: str | None, source: str | None, language: str | None
) -> Messages:
    """The mapped points of a long article, one per line (reduce step)."""
    return [system_message(language), _user("reduce", "\n".join(point_lines), title, source)]


def build_support_messages(
    listing: str, *, title: str | None, source: str | None, language: str | None
) -> Messages:
    """The claims and their quotes, one per line, for the support check."""
    return [system_message(language, "support-system"), _user("support", listing, title, source)]
