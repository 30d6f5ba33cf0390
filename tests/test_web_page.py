"""The web page at `/`, end to end in headless Chromium (Debian's package, driven by Playwright):
paste an article, watch it live, read the map with its quotes highlighted in the article."""

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from tests.conftest import fresh_text
from tests.stack import Stack

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def page() -> Page:
    assert CHROMIUM.exists(), (
        "Debian's chromium is needed: apt-get install -y chromium (.ci/run does)"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1280, "height": 1000})
        browser.close()


def submit(page: Page, stack: Stack, key: str, text: str) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#api-key", key)
    page.fill("#article-text", text)
    page.click("#submit")


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_shows_the_map_with_quotes_in_place(stack: Stack, page: Page) -> None:
    stack.llm.control(latency=1)  # long enough to see the status move
    submit(page, stack, stack.key, fresh_text("opinion_boilerplate.txt"))
    expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
    expect(page.locator("#summary")).not_to_be_empty()

    with stack.client() as client:  # the job the page submitted: the key's newest
        job = client.get("/v1/jobs", params={"limit": 1}).json()["items"][0]
        job_id = job["id"]
        result = client.get(f"/v1/jobs/{job_id}").json()["result"]
    points = result["argument_points"]
    grounding = result["grounding"]
    expect(page.locator("#grounding")).to_have_text(
        f"{grounding['verified']}/{grounding['quotes']} quotes verified"
    )
    expect(page.locator(".point")).to_have_count(len(points))
    # a quote may be split in several marks where a loaded term starts or ends inside it
    shown = page.evaluate(
        """() => {
            const quotes = {};
            for (const m of document.querySelectorAll("#article mark.quote")) {
                const id = `${m.dataset.point}/${m.dataset.quote}`;
                quotes[id] = (quotes[id] || "") + m.textContent;
            }
            return quotes;
        }"""
    )
    expected = {
        f"{i}/{j}": ev["quote"]
        for i, point in enumerate(points)
        for j, ev in enumerate(point["evidence"])
        if ev["verified"]
    }
    assert shown == expected and expected
    assert page.locator("#article mark.loaded").count() > 0

    page.locator(".point").nth(1).click()
    second = page.locator('mark.quote[data-point="1"]')
    expect(second.first).to_have_class("quote active")
    for index in range(page.locator('mark.quote[data-point="0"]').count()):
        expect(page.locator('mark.quote[data-point="0"]').nth(index)).not_to_have_class(
            "quote active"
        )
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-page.png"), full_page=True)


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_page_says_what_is_wrong_with_a_bad_key(stack: Stack, page: Page) -> None:
    submit(page, stack, "eh_not-a-key", "A sentence to summarize.")
    expect(page.locator("#error")).to_contain_text("key", timeout=15_000)
    assert httpx.get(f"{stack.api_url}/").headers["content-type"].startswith("text/html")
