"""The story page at `/story`, end to end in headless Chromium (Debian's package, driven by
Playwright): several articles through the form, each article's job followed live, then the
comparison (outlets as columns, claim clusters as rows, quotes in place, blindspots,
contradictions, the synthesis), reopened from the URL. Screenshots go to tests/artifacts/."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from testkit.fixtures import STORY_ANGLES, fixture_text, story_articles, story_text
from testkit.stack import FakeLLM, Stack, running_stack
from tests.e2e.browser import VIEWPORT
from tests.e2e.test_web_page import ARTIFACTS, api_get, shot

pytestmark = pytest.mark.e2e

# What the comparison table shows: its columns, and per row its cluster, kind and each cell's
# quotes (text and whether marked verified), or "not covered".
TABLE = """() => {
    const columns = [...document.querySelectorAll("#comparison-head th.outlet")].map((th) => ({
        article_id: th.dataset.article,
        name: th.querySelector(".outlet-name").textContent,
    }));
    const rows = [...document.querySelectorAll("#comparison-body tr")].map((tr) => ({
        id: tr.dataset.cluster,
        kind: tr.className.split(" ").filter((c) => c === "shared" || c === "unique"),
        claim: tr.querySelector(".cluster-claim").textContent,
        cells: Object.fromEntries([...tr.querySelectorAll("td")].map((td) => [
            td.dataset.article,
            td.classList.contains("blindspot")
                ? td.textContent
                : [...td.querySelectorAll(".evidence li")].map((li) => ({
                      quote: li.querySelector("q").textContent,
                      verified: li.classList.contains("verified"),
                  })),
        ])),
    }));
    return { columns, rows };
}"""


@pytest.fixture(scope="module")
def lexical_stack(services_dir: Path, redis_url: str, fake_llm: FakeLLM) -> Iterator[Stack]:
    """A stack with the offline provider: its stories are matched lexically, so articles that
    share sentences share clusters, and a negated one contradicts."""
    database_url = f"sqlite:///{services_dir / 'story-lexical.db'}"
    with running_stack(
        "lexical", database_url, redis_url, fake_llm, services_dir, EVENHAND_PROVIDER="extractive"
    ) as running:
        yield running


def fill_story(page: Page, stack: Stack, title: str, articles: list[dict[str, str]]) -> None:
    """Open the story page from the main page's link, fill the form and submit it."""
    page.goto(f"{stack.api_url}/")
    page.get_by_role("link", name="Compare several articles").click()
    expect(page).to_have_url(f"{stack.api_url}/story")
    page.fill("#api-key", stack.key)
    page.fill("#story-title-input", title)
    entries = page.locator(".article-entry")
    expect(entries).to_have_count(2)  # a story takes two at least: those are there at once
    for _ in range(len(articles) - 2):
        page.click("#add-article")
    expect(entries).to_have_count(len(articles))
    for n, article in enumerate(articles):
        entry = entries.nth(n)
        for field in ("title", "source", "text"):
            if article.get(field):
                entry.locator(f'[data-field="{field}"]').fill(article[field])
    page.click("#submit")


def story_id_on_page(page: Page) -> str:
    expect(page.locator("#story-id")).not_to_be_empty(timeout=15_000)
    story_id = page.locator("#story-id").inner_text()
    assert page.url.endswith(f"#story={story_id}")
    return story_id


def assert_comparison_matches(page: Page, story: dict[str, Any]) -> None:
    """The page shows what GET /v1/stories/{id} says: outlets as columns, clusters as rows with
    each member's quotes in its outlet's cell, blindspots, contradictions, the synthesis."""
    result = story["result"]
    failed = {o["article_id"] for o in result["failed"]}
    outlets = [o for o in result["outlets"] if o["article_id"] not in failed]
    names = {a["article_id"]: a["source"] for a in story["articles"]}
    expect(page.locator("#synthesis")).to_have_text(result["synthesis"])
    table = page.evaluate(TABLE)

    assert [c["article_id"] for c in table["columns"]] == [o["article_id"] for o in outlets]
    assert [c["name"] for c in table["columns"]] == [names[o["article_id"]] for o in outlets]
    assert [r["id"] for r in table["rows"]] == [c["id"] for c in result["clusters"]]
    blindspots = {c["article_id"]: set(c["blindspots"]) for c in result["coverage"]}
    for row, cluster in zip(table["rows"], result["clusters"], strict=True):
        assert row["claim"] == cluster["claim"]
        assert row["kind"] == ["shared" if cluster["id"] in result["shared"] else "unique"]
        for outlet in outlets:
            article_id = outlet["article_id"]
            quotes = [
                {"quote": q["quote"], "verified": q["verified"]}
                for m in cluster["members"]
                if m["article_id"] == article_id
                for q in m["quotes"]
            ]
            if cluster["id"] in blindspots[article_id]:
                assert row["cells"][article_id] == "not covered"
            else:
                assert row["cells"][article_id] == quotes, (cluster["id"], article_id)
    grounding = result["grounding"]
    expect(page.locator("#comparison .evidence li.verified")).to_have_count(grounding["verified"])
    expect(page.locator("#grounding")).to_have_text(
        f"{grounding['verified']}/{grounding['quotes']} quotes verified"
    )
    # each outlet's list of what it leaves out
    for outlet in outlets:
        card = page.locator(f'.blindspot-card[data-article="{outlet["article_id"]}"]')
        expect(card.locator("h4")).to_have_text(names[outlet["article_id"]])
        listed = card.locator(".blindspot-list li")
        expected = [
            c["id"] for c in result["clusters"] if c["id"] in blindspots[outlet["article_id"]]
        ]
        assert [
            listed.nth(i).get_attribute("data-cluster") for i in range(listed.count())
        ] == expected
    contradictions = page.locator("#contradictions li")
    expect(contradictions).to_have_count(len(result["contradictions"]))
    for n, item in enumerate(result["contradictions"]):
        expect(contradictions.nth(n).locator(".explanation")).to_have_text(item["explanation"])
        expect(contradictions.nth(n).locator(".cluster-ref")).to_have_text(item["clusters"])
    expect(page.locator("#no-contradictions")).to_be_visible(visible=not result["contradictions"])
    # readable at 1280x900: the table fits the width, no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORT["width"]


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_story_page_compares_three_outlets(stack: Stack, page: Page) -> None:
    stack.llm.control(latency=1)  # long enough to see the story wait on its jobs
    fill_story(page, stack, "Main Street closure", story_articles())
    story_id = story_id_on_page(page)
    expect(page.locator("#status")).to_have_text("succeeded", timeout=90_000)
    assert "waiting" in page.evaluate("window.__statuses"), "the story was not followed live"
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#story-title")).to_have_text("Main Street closure")
    expect(page.locator("#article-jobs .job-status")).to_have_text(["succeeded"] * 3)

    story = api_get(stack, f"/v1/stories/{story_id}")
    assert story["status"] == "succeeded"
    result = story["result"]
    assert [a["source"] for a in story["articles"]] == [source for _, source in STORY_ANGLES]
    assert result["grounding"]["verified"] > 0
    # every outlet leaves out some cluster another makes: the page must show it
    assert all(c["blindspots"] for c in result["coverage"])
    assert_comparison_matches(page, story)
    shot(page, "story-page.png")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "story-page-full.png"), full_page=True)

    # a reload reopens the same story from the URL
    page.reload()
    expect(page.locator("#status")).to_have_text("succeeded", timeout=15_000)
    expect(page.locator("#story-id")).to_have_text(story_id)
    expect(page.locator(".article-entry textarea").first).to_be_hidden()  # the form folded away
    assert_comparison_matches(page, story)
    shot(page, "story-page-reloaded.png")

    # the key's stories list it, and the form unfolds again for a new one
    page.get_by_text("Recent stories").click()
    first = page.locator("#recent-stories a").first
    expect(first).to_have_attribute("data-story", story_id, timeout=15_000)
    expect(first.locator(".job-title")).to_have_text("Main Street closure")
    page.get_by_text("New story").click()
    expect(page.locator(".article-entry textarea").first).to_be_visible()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_story_page_names_a_failed_article(stack: Stack, page: Page) -> None:
    articles = [
        *story_articles()[:2],
        {"text": fixture_text("boilerplate_only.txt"), "source": "Ad Farm"},
    ]
    fill_story(page, stack, "", articles)
    story_id = story_id_on_page(page)
    expect(page.locator("#status")).to_have_text("succeeded", timeout=90_000)
    story = api_get(stack, f"/v1/stories/{story_id}")
    [failed] = story["result"]["failed"]
    error = failed["error"]
    assert error["code"] == "no_article_text" and error["message"]

    item = page.locator(f'#failed li[data-article="{failed["article_id"]}"]')
    expect(item).to_contain_text("Ad Farm")
    expect(item).to_contain_text(error["code"])
    expect(item).to_contain_text(error["message"])
    job = page.locator(f'#article-jobs li[data-article="{failed["article_id"]}"]')
    expect(job.locator(".job-status")).to_have_text("failed")
    expect(job.locator(".job-error")).to_have_text(f"{error['code']}: {error['message']}")
    # no title given: the story is named after its outlets
    expect(page.locator("#story-title")).to_have_text("Harbor Gazette · City Voice · Ad Farm")
    assert_comparison_matches(page, story)  # the two that succeeded are the columns
    shot(page, "story-page-failed-article.png")

    page.reload()
    expect(page.locator("#status")).to_have_text("succeeded", timeout=15_000)
    expect(item).to_contain_text(error["code"])


def test_story_page_shows_shared_claims_and_contradictions(
    lexical_stack: Stack, page: Page
) -> None:
    stack = lexical_stack
    report = story_text("news_report")
    denial = report.replace("The plan will cost", "The plan will not cost")
    assert denial != report
    articles = [
        {"text": report, "source": "Harbor Gazette"},
        {"text": denial, "source": "Harbor Wire"},
        {"text": story_text("opinion_for"), "source": "City Voice"},
        {"text": story_text("opinion_against"), "source": "Keller's Column"},
        {"text": report + "\nUpdated at noon.", "source": "Coast Daily"},
    ]
    with stack.client() as client:
        response = client.post("/v1/stories", json={"articles": articles})
    assert response.status_code == 202, response.text
    story_id = response.json()["story_id"]

    # a shared link, in a browser that has never seen the key
    page.goto(f"{stack.api_url}/story#story={story_id}")
    expect(page.locator("#error")).to_contain_text("Enter your API key")
    page.fill("#api-key", stack.key)
    page.press("#api-key", "Enter")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=90_000)
    story = api_get(stack, f"/v1/stories/{story_id}")
    result = story["result"]
    assert result["method"] == "lexical"
    assert result["shared"] and result["unique"] and result["contradictions"]
    assert_comparison_matches(page, story)  # five outlets, still no sideways scrolling
    expect(page.locator("#comparison-body tr.shared")).to_have_count(len(result["shared"]))
    expect(page.locator("#comparison-body tr.unique")).to_have_count(len(result["unique"]))
    for cluster_id in result["shared"]:
        row = page.locator(f'#comparison-body tr[data-cluster="{cluster_id}"]')
        makers = next(c for c in result["clusters"] if c["id"] == cluster_id)["article_ids"]
        expect(row.locator(".tag.shared")).to_have_text(f"shared by {len(makers)}")
    [contradiction] = result["contradictions"]
    first, second = contradiction["clusters"]
    row = page.locator(f'#comparison-body tr[data-cluster="{first}"]')
    expect(row.locator(".tag.contradicts")).to_have_text(f"contradicts {second}")
    shot(page, "story-page-five-outlets.png")
    # a contradiction's cluster leads to its row
    page.locator("#contradictions .cluster-ref").nth(1).click()
    target = page.locator(f'#comparison-body tr[data-cluster="{second}"]')
    expect(target).to_have_class(re.compile(r"\bselected\b"))
    expect(target).to_be_in_viewport()
    shot(page, "story-page-contradiction.png")
