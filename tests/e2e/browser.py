"""Headless Chromium for the page tests: Debian's package driven by Playwright, never a
downloaded browser."""

from pathlib import Path

from playwright.sync_api import ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
# Records every text #status shows, so a test can tell the page followed a job or story live.
STATUS_RECORDER = """
window.__statuses = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("status");
  const note = () => {
    const s = el.textContent;
    if (window.__statuses[window.__statuses.length - 1] !== s) window.__statuses.push(s);
  };
  new MutationObserver(note).observe(el, { childList: true, characterData: true, subtree: true });
});
"""
