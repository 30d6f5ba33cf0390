"""The web page at `/`, end to end in headless Chromium (Debian's package, driven by Playwright):
paste an article, watch its job live, read the map with its quotes highlighted in the article,
reopen it from the URL or from the key's recent jobs. Screenshots go to tests/artifacts/."""

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from testkit.fixtures import fresh_text
from testkit.stack import Stack
from tests.e2e.browser import VIEWPORT

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
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


def submit(page: Page, stack: Stack, key: str, text: str, title: str = "") -> str:
    """Fill the form and submit; returns the id of the job the page started."""
    page.goto(f"{stack.api_url}/")
    page.fill("#api-key", key)
    if title:
        page.fill("#article-title", title)
    page.fill("#article-text", text)
    page.click("#submit")
    if key != stack.key:
        return ""
    expect(page.locator("#job-id")).not_to_be_empty(timeout=15_000)
    return page.locator("#job-id").inner_text()


def api_get(stack: Stack, path: str, key: str | None = None) -> dict[str, Any]:
    with stack.client(key) as client:
        response = client.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def assert_summary_on_screen(page: Page) -> None:
    """The whole summary lies inside the 1280x900 viewport, the page not scrolled."""
    assert page.evaluate("window.scrollY") == 0
    box = page.locator("#summary").bounding_box()
    assert box is not None and box["height"] > 0
    assert box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"], box
    assert box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORT["width"], box


def derived_label(clean_text: str) -> str:
    """What the page calls an article given no title: its first line, cut at 90 characters."""
    first = next(line.strip() for line in clean_text.splitlines() if line.strip())
    return first if len(first) <= 90 else first[:90] + "…"


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_shows_the_map_with_quotes_in_place(stack: Stack, page: Page) -> None:
    stack.llm.control(latency=1)  # long enough to see the status move
    # Astral characters (2 UTF-16 units, 1 code point) before the quotes and loaded terms: the
    # page must cut the article by code points, as the API's offsets count them.
    text = fresh_text("opinion_boilerplate.txt").replace("tunnel toll", "tunnel 🚇 toll")
    title = "The harbour tunnel toll is a tax"
    job_id = submit(page, stack, stack.key, text, title=title)
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    assert "running" in page.evaluate("window.__statuses"), "the status was not followed live"
    expect(page.locator("#summary")).not_to_be_empty()
    expect(page.locator("#thesis")).not_to_be_empty()
    expect(page.locator("#error")).to_be_hidden()
    # the form folded away: title and summary are on the first screen, the job is in the URL
    expect(page.locator("#title")).to_have_text(title)
    expect(page.locator("#article-text")).to_be_hidden()
    assert_summary_on_screen(page)
    assert page.url.endswith(f"#job={job_id}")
    shot(page, "web-page-result.png")

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
    expect(page.locator("#summary")).to_have_text(result["summary"])
    # a support badge only where the result gives a verdict
    verdicts = [
        ev.get("support") for point in points for ev in point["evidence"] if ev.get("support")
    ]
    expect(page.locator(".evidence .support")).to_have_count(len(verdicts))

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

    # a reload reopens the same job from the URL, with the same result on the first screen
    page.reload()
    expect(page.locator("#status")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#job-id")).to_have_text(job_id)
    expect(page.locator("#title")).to_have_text(title)
    expect(page.locator("#summary")).to_have_text(result["summary"])
    expect(page.locator(".point")).to_have_count(len(points))
    assert page.locator("#article").text_content() == clean
    assert page.evaluate(MARKED_TEXT)["quotes"] == expected_quotes
    assert_summary_on_screen(page)
    shot(page, "web-page-reloaded.png")

    # "New article" unfolds the form again
    page.get_by_text("New article").click()
    expect(page.locator("#article-text")).to_be_visible()
    expect(page.locator("#submit")).to_be_visible()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_recent_jobs_reopen_an_older_job(stack: Stack, page: Page) -> None:
    key = stack.new_key("web-recent")  # a key of its own: its list holds these two jobs only
    older = stack.submit(
        key, text=fresh_text("news_multiple_sides.txt"), title="Valdera river diversion"
    )
    stack.wait_job(older["job_id"], key)
    newer = stack.submit(key, text=fresh_text("opinion_boilerplate.txt"))  # no title given
    stack.wait_job(newer["job_id"], key)
    older_result = api_get(stack, f"/v1/jobs/{older['job_id']}", key)["result"]
    newer_article = api_get(stack, f"/v1/articles/{newer['article_id']}", key)
    newer_label = derived_label(newer_article["clean_text"])

    page.goto(f"{stack.api_url}/")
    page.fill("#api-key", key)
    page.click("#use-key")
    page.get_by_text("Recent jobs").click()
    links = page.locator("#recent-jobs a")
    expect(links).to_have_count(2, timeout=15_000)
    # newest first, each with its status and its title (or first line when it had none)
    assert links.nth(0).get_attribute("data-job") == newer["job_id"]
    assert links.nth(1).get_attribute("data-job") == older["job_id"]
    expect(links.nth(0).locator(".job-title")).to_have_text(newer_label)
    expect(links.nth(1).locator(".job-title")).to_have_text("Valdera river diversion")
    expect(links.locator(".job-status")).to_have_text(["succeeded", "succeeded"])
    shot(page, "web-page-recent-jobs.png")

    links.nth(1).click()
    expect(page.locator("#title")).to_have_text("Valdera river diversion", timeout=15_000)
    expect(page.locator("#summary")).to_have_text(older_result["summary"])
    expect(page.locator("#job-id")).to_have_text(older["job_id"])
    assert page.url.endswith(f"#job={older['job_id']}")
    expect(page.locator("#recent-jobs")).to_be_hidden()
    assert_summary_on_screen(page)
    shot(page, "web-page-older-job.png")

    # the list again, now opened by itself on the landing page of a browser that knows the key
    page.goto(f"{stack.api_url}/")
    expect(page.locator("#recent-jobs a")).to_have_count(2, timeout=15_000)
    expect(page.locator("#result")).to_be_hidden()
    page.locator("#recent-jobs a").nth(0).click()
    expect(page.locator("#title")).to_have_text(newer_label, timeout=15_000)
    # Back returns to the landing page, Forward to the job
    page.go_back()
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator("#article-text")).to_be_visible()
    page.go_forward()
    expect(page.locator("#title")).to_have_text(newer_label, timeout=15_000)


def test_shared_link_asks_for_the_key_and_shows_support_verdicts(
    support_stack: Stack, page: Page
) -> None:
    stack = support_stack  # the support check on: each verified quote gets a verdict
    stack.llm.control(support="cycle")  # the stand-in answers supports, partial, unrelated, ...
    accepted = stack.submit(
        text=fresh_text("news_multiple_sides.txt"), title="County weighs river diversion"
    )
    job_id = accepted["job_id"]
    job = stack.wait_job(job_id)
    evidence = [ev for point in job["result"]["argument_points"] for ev in point["evidence"]]
    verdicts = [ev["support"] for ev in evidence]
    assert {"supports", "partial", "unrelated"} <= set(verdicts), verdicts
    page.goto(f"{stack.api_url}/#job={job_id}")  # a browser that has never seen the key
    expect(page.locator("#error")).to_contain_text("Enter your API key")
    expect(page.locator("#api-key")).to_be_focused()
    expect(page.locator("#result")).to_be_hidden()
    page.fill("#api-key", stack.key)
    page.press("#api-key", "Enter")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#title")).to_have_text("County weighs river diversion")
    expect(page.locator("#error")).to_be_hidden()
    # every quote shows the verdict the API gave it, in the same order; a quote not judged none
    badges = page.locator(".evidence .support")
    expect(badges).to_have_text([v for v in verdicts if v is not None])
    quotes = page.locator(".evidence li")
    expect(quotes).to_have_count(len(evidence))
    for n, ev in enumerate(evidence):
        expect(quotes.nth(n).locator("q")).to_have_text(ev["quote"])
        expect(quotes.nth(n).locator(".support")).to_have_count(int(ev["support"] is not None))
    shot(page, "web-page-shared-link.png")
    page.locator(".point").first.screenshot(path=str(ARTIFACTS / "web-page-support-badges.png"))

    # a link to a job this key does not have says so, and shows no stale result
    missing = str(uuid.uuid4())
    page.goto(f"{stack.api_url}/#job={missing}")
    expect(page.locator("#error")).to_contain_text(f"No job {missing}")
    expect(page.locator("#result")).to_be_hidden()


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
    page.reload()  # the failed job, reopened from the URL, still says why
    expect(page.locator("#status")).to_have_text("failed", timeout=15_000)
    expect(page.locator("#error")).to_contain_text("llm_auth_failed")


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_says_what_is_wrong_with_a_bad_key(stack: Stack, page: Page) -> None:
    submit(page, stack, "eh_not-a-key", "A sentence to summarize.")
    expect(page.locator("#error")).to_contain_text("key", timeout=15_000)
    expect(page.locator("#status")).to_have_text("error")
    expect(page.locator("#article-text")).to_be_visible()  # the form stays open to fix it
    # the key is kept in the browser, masked
    assert page.evaluate("localStorage.getItem('evenhand.key')") == "eh_not-a-key"
    assert page.get_attribute("#api-key", "type") == "password"
    page.reload()
    expect(page.locator("#api-key")).to_have_value("eh_not-a-key")
    response = httpx.get(f"{stack.api_url}/")
    assert response.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in response.text
