"""The web page at `/`, end to end in headless Chromium (Debian's package, driven by Playwright):
paste an article, watch its job live, read the map with its quotes highlighted in the article."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from testkit.fixtures import fresh_text
from testkit.stack import Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
# Records every text #status shows, so a test can tell the page followed the job live.
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
# The text of the article's marks joined per quote ("point/quote") and per loaded term: a quote
# may be cut in several marks where a loaded term starts or ends inside it, and the other way.
MARKED_TEXT = """() => {
    const quotes = {}, loaded = {};
    for (const m of document.querySelectorAll("#article mark.quote")) {
        const id = `${m.dataset.point}/${m.dataset.quote}`;
        quotes[id] = (quotes[id] || "") + m.textContent;
    }
    for (const m of document.querySelectorAll("#article mark.loaded")) {
        loaded[m.dataset.loaded] = (loaded[m.dataset.loaded] || "") + m.textContent;
    }
    return { quotes, loaded };
}"""
ACTIVE = re.compile(r"(^|\s)active(\s|$)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: the web page test needs Debian's chromium "
        "(apt-get install -y chromium; .ci/run installs it). Never download a browser."
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.add_init_script(STATUS_RECORDER)
    yield page
    context.close()


def submit(page: Page, stack: Stack, key: str, text: str) -> str:
    """Fill the form and submit; returns the id of the job the page started."""
    page.goto(f"{stack.api_url}/")
    page.fill("#api-key", key)
    page.fill("#article-text", text)
    page.click("#submit")
    if key != stack.key:
        return ""
    expect(page.locator("#job-id")).not_to_be_empty(timeout=15_000)
    return page.locator("#job-id").inner_text()


def api_get(stack: Stack, path: str) -> dict[str, Any]:
    with stack.client() as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_shows_the_map_with_quotes_in_place(stack: Stack, page: Page) -> None:
    stack.llm.control(latency=1)  # long enough to see the status move
    # Astral characters (2 UTF-16 units, 1 code point) before the quotes and loaded terms: the
    # page must cut the article by code points, as the API's offsets count them.
    text = fresh_text("opinion_boilerplate.txt").replace("tunnel toll", "tunnel 🚇 toll")
    job_id = submit(page, stack, stack.key, text)
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    assert "running" in page.evaluate("window.__statuses"), "the status was not followed live"
    expect(page.locator("#summary")).not_to_be_empty()
    expect(page.locator("#thesis")).not_to_be_empty()
    expect(page.locator("#error")).to_be_hidden()

    job = api_get(stack, f"/v1/jobs/{job_id}")
    article = api_get(stack, f"/v1/articles/{job['article_id']}")
    result = job["result"]
    clean = article["clean_text"]
    assert "🚇" in clean
    points = result["argument_points"]
    grounding = result["grounding"]
    assert grounding["quotes"] > 0 and grounding["verified"] == grounding["quotes"]
    badge = page.locator("#grounding")
    expect(badge).to_have_text(f"{grounding['verified']}/{grounding['quotes']} quotes verified")
    expect(badge).to_have_class(re.compile(r"\bok\b"))
    expect(page.locator("#article-type")).to_have_text(result["article_type"])
    expect(page.locator("#provider")).to_contain_text(result["model"])
    expect(page.locator(".point")).to_have_count(len(points))
    expect(page.locator(".point .evidence li.verified")).to_have_count(grounding["verified"])

    marked = page.evaluate(MARKED_TEXT)
    expected_quotes = {
        f"{i}/{j}": ev["quote"]
        for i, point in enumerate(points)
        for j, ev in enumerate(point["evidence"])
        if ev["verified"]
    }
    assert len(expected_quotes) == grounding["verified"]
    assert marked["quotes"] == expected_quotes
    assert any("🚇" in quote for quote in expected_quotes.values())  # the emoji is inside one
    loaded = result["loaded_language"]
    assert loaded, "the fixture has loaded terms"
    assert marked["loaded"] == {str(k): clean[t["start"] : t["end"]] for k, t in enumerate(loaded)}
    assert all(marked["loaded"][str(k)].lower() == t["term"].lower() for k, t in enumerate(loaded))
    # the whole article is shown, nothing dropped or doubled around the marks
    assert page.locator("#article").text_content() == clean

    page.locator(".point").nth(1).click()
    expect(page.locator(".point").nth(1)).to_have_class(re.compile(r"\bselected\b"))
    second = page.locator('#article mark.quote[data-point="1"]')
    assert second.count() > 0
    for index in range(second.count()):
        expect(second.nth(index)).to_have_class(ACTIVE)
    first = page.locator('#article mark.quote[data-point="0"]')
    assert first.count() > 0
    for index in range(first.count()):
        expect(first.nth(index)).not_to_have_class(ACTIVE)
    expect(second.first).to_be_in_viewport()

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_falls_back_to_polling_when_the_event_stream_fails(stack: Stack, page: Page) -> None:
    page.route(re.compile(r"/v1/jobs/[^/]+/events$"), lambda route: route.abort())
    submit(page, stack, stack.key, fresh_text("news_multiple_sides.txt"))
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator(".point").first).to_be_visible()
    expect(page.locator("#article mark.quote").first).to_be_visible()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_shows_why_a_job_failed(stack: Stack, page: Page) -> None:
    stack.llm.control(faults=[{"kind": "auth", "count": 1}])
    submit(page, stack, stack.key, fresh_text("news_multiple_sides.txt"))
    expect(page.locator("#status")).to_have_text("failed", timeout=60_000)
    expect(page.locator("#error")).to_contain_text("llm_auth_failed")
    expect(page.locator("#result")).to_be_hidden()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_says_what_is_wrong_with_a_bad_key(stack: Stack, page: Page) -> None:
    submit(page, stack, "eh_not-a-key", "A sentence to summarize.")
    expect(page.locator("#error")).to_contain_text("key", timeout=15_000)
    expect(page.locator("#status")).to_have_text("error")
    # the key is kept in the browser, masked
    assert page.evaluate("localStorage.getItem('evenhand.key')") == "eh_not-a-key"
    assert page.get_attribute("#api-key", "type") == "password"
    page.reload()
    expect(page.locator("#api-key")).to_have_value("eh_not-a-key")
    response = httpx.get(f"{stack.api_url}/")
    assert response.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in response.text
