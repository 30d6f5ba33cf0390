// evenhand's story page: submit several articles about one event, watch each article's job live,
// then compare them: outlets as columns, claim clusters as rows, each outlet's blindspots, the
// contradictions and the synthesis. The open story lives in the URL (#story=<id>).
import {
  $,
  api,
  canOpen,
  currentKey,
  element,
  followHash,
  fromHash,
  onKeySaved,
  quoteSign,
  recentEntry,
  recentPanel,
  rememberKey,
  requireKey,
  setStatus,
  showError,
  showFailure,
  showGrounding,
  submitForm,
  when,
} from "./common.js";

const FINISHED = new Set(["succeeded", "failed"]);
const MIN_ARTICLES = 2;
// a story's long-poll is woken when one of its jobs ends; the short wait also shows a job that
// starts running
const POLL_WAIT_SECONDS = 5;

const storyPath = (storyId) => `/v1/stories/${encodeURIComponent(storyId)}`;
const jobLink = (jobId) => `/#job=${encodeURIComponent(jobId)}`;

// The story on screen: its id and the controller that stops following it when another opens.
const view = { storyId: null, controller: null };

// --- the form -----------------------------------------------------------------------------------

let entrySeq = 0;

function entries() {
  return [...document.querySelectorAll("#article-entries .article-entry")];
}

function renumber() {
  const all = entries();
  all.forEach((entry, i) => {
    entry.querySelector(".entry-number").textContent = String(i + 1);
    const remove = entry.querySelector(".remove");
    remove.disabled = all.length <= MIN_ARTICLES;
    remove.setAttribute("aria-label", `Remove article ${i + 1}`);
  });
}

function addEntry() {
  const entry = $("article-template").content.firstElementChild.cloneNode(true);
  entrySeq += 1;
  entry.querySelectorAll("[data-field]").forEach((field) => {
    field.id = `article-${entrySeq}-${field.dataset.field}`;
    field.name = field.id;
  });
  entry.querySelectorAll("label[data-for]").forEach((label) => {
    label.htmlFor = `article-${entrySeq}-${label.dataset.for}`;
  });
  entry.querySelector(".remove").addEventListener("click", () => {
    if (entries().length <= MIN_ARTICLES) return;
    entry.remove();
    renumber();
  });
  $("article-entries").append(entry);
  renumber();
  return entry;
}

// The request's articles, or what to fix. An entry left wholly empty is skipped.
function collectArticles() {
  const articles = [];
  for (const [i, entry] of entries().entries()) {
    const value = (name) => entry.querySelector(`[data-field="${name}"]`).value;
    const text = value("text");
    const url = value("url").trim();
    const title = value("title").trim();
    const source = value("source").trim();
    if (!text.trim() && !url) {
      if (title || source) return { problem: `Article ${i + 1}: paste its text or give its URL.` };
      continue;
    }
    const article = text.trim() ? { text } : { url };
    if (title) article.title = title;
    if (source) article.source = source;
    articles.push(article);
  }
  if (articles.length < MIN_ARTICLES) {
    return { problem: `A story needs at least ${MIN_ARTICLES} articles: paste their texts or give their URLs.` };
  }
  return { articles };
}

$("add-article").addEventListener("click", () => {
  const entry = addEntry();
  entry.querySelector("textarea").focus();
});

$("story-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const key = requireKey();
  if (!key) return;
  const { articles, problem } = collectArticles();
  if (problem) {
    showError(problem);
    return;
  }
  rememberKey(key);
  const body = { articles };
  const title = $("story-title-input").value.trim();
  if (title) body.title = title;
  await submitForm("/v1/stories", body, (accepted) => goToStory(accepted.story_id));
});

// --- naming the outlets -------------------------------------------------------------------------

// What to call each article: its outlet, else its title, else its place; a name two articles
// share gets its place added. `articles` are the story's, in order.
function outletNames(articles) {
  const base = articles.map((a, i) => (a.source || "").trim() || (a.title || "").trim() || `Article ${i + 1}`);
  const seen = new Map();
  base.forEach((name) => seen.set(name, (seen.get(name) || 0) + 1));
  const names = new Map();
  articles.forEach((a, i) => names.set(a.article_id, seen.get(base[i]) > 1 ? `${base[i]} (${i + 1})` : base[i]));
  return names;
}

function storyLabel(story) {
  if (story.title && story.title.trim()) return { text: story.title.trim(), given: true };
  const names = [...outletNames(story.articles || []).values()];
  return { text: names.length ? names.join(" · ") : "Untitled story", given: false };
}

// --- progress -----------------------------------------------------------------------------------

function renderProgress(story, names) {
  const label = storyLabel(story);
  const title = $("story-title");
  title.textContent = label.text;
  title.classList.toggle("derived", !label.given);
  document.title = `${label.text} — evenhand`;
  const submitted = when(story.created_at);
  $("story-byline").textContent = `${(story.articles || []).length} articles${submitted ? ` · submitted ${submitted}` : ""}`;
  const items = (story.articles || []).map((article) => {
    const li = element("li", "article-job");
    li.dataset.article = article.article_id;
    li.dataset.status = article.status;
    const name = element("a", "job-name", names.get(article.article_id));
    name.href = jobLink(article.job_id);
    name.target = "_blank";
    name.rel = "noopener";
    name.title = "Open this article with its quotes highlighted";
    const status = element("span", "job-status", article.status);
    status.dataset.status = article.status;
    li.append(name, status);
    if (article.title && article.source) li.append(element("span", "muted small job-sub", article.title));
    if (article.error) {
      li.append(element("span", "job-error", `${article.error.code}: ${article.error.message}`));
    }
    return li;
  });
  $("article-jobs").replaceChildren(...items);
  $("progress").hidden = false;
  setStatus(story.status);
}

// --- the comparison -----------------------------------------------------------------------------

function selectCluster(clusterId) {
  document.querySelectorAll("#comparison-body tr").forEach((row) => {
    row.classList.toggle("selected", row.dataset.cluster === clusterId);
  });
  const row = document.querySelector(`#comparison-body tr[data-cluster="${CSS.escape(clusterId)}"]`);
  if (row) row.scrollIntoView({ block: "center", behavior: "smooth" });
}

function clusterButton(clusterId, text) {
  const button = element("button", "cluster-ref", text || clusterId);
  button.type = "button";
  button.dataset.cluster = clusterId;
  button.title = `Show ${clusterId} in the table`;
  button.addEventListener("click", () => selectCluster(clusterId));
  return button;
}

function renderMember(member) {
  const box = element("div", "member");
  box.append(element("div", "member-claim", member.claim || ""));
  if (member.speaker) box.append(element("div", "speaker", `— ${member.speaker}`));
  const quotes = member.quotes || [];
  if (quotes.length) {
    const list = element("ul", "evidence");
    quotes.forEach((q) => {
      const li = element("li", q.verified ? "verified" : "unverified");
      li.append(quoteSign(q.verified), element("q", "", q.quote || ""));
      list.append(li);
    });
    box.append(list);
  }
  return box;
}

function renderHeadRow(outlets, names, coverage, clusterCount) {
  const corner = element("th", "claim-col", "Claim");
  corner.scope = "col";
  const cells = outlets.map((outlet) => {
    const th = element("th", "outlet");
    th.scope = "col";
    th.dataset.article = outlet.article_id;
    th.append(element("span", "outlet-name", names.get(outlet.article_id)));
    if (outlet.title && outlet.source) th.append(element("span", "outlet-title", outlet.title));
    const covered = (coverage.get(outlet.article_id) || { covers: [] }).covers.length;
    const line = element("span", "outlet-coverage", `covers ${covered} of ${clusterCount} · `);
    const link = element("a", "", "article ↗");
    link.href = jobLink(outlet.job_id);
    link.target = "_blank";
    link.rel = "noopener";
    link.title = "Open this article with its quotes highlighted";
    line.append(link);
    th.append(line);
    return th;
  });
  $("comparison-head").replaceChildren(corner, ...cells);
}

function renderRows(result, outlets, names, contradicting) {
  const shared = new Set(result.shared || []);
  const rows = (result.clusters || []).map((cluster) => {
    const kind = shared.has(cluster.id) ? "shared" : "unique";
    const row = element("tr", kind);
    row.dataset.cluster = cluster.id;
    const head = element("th", "cluster");
    head.scope = "row";
    const tags = element("div", "cluster-tags");
    tags.append(element("span", "cluster-id", cluster.id));
    const makers = cluster.article_ids || [];
    const badge =
      kind === "shared"
        ? element("span", "tag shared", `shared by ${makers.length}`)
        : element("span", "tag unique", `only ${names.get(makers[0]) || "one outlet"}`);
    tags.append(badge);
    (contradicting.get(cluster.id) || []).forEach((other) => {
      const tag = clusterButton(other, `contradicts ${other}`);
      tag.classList.add("tag", "contradicts");
      tags.append(tag);
    });
    head.append(tags, element("div", "cluster-claim", cluster.claim || ""));
    const cells = outlets.map((outlet) => {
      const td = element("td");
      td.dataset.article = outlet.article_id;
      const members = (cluster.members || []).filter((m) => m.article_id === outlet.article_id);
      if (!members.length) {
        td.className = "blindspot";
        td.append(element("span", "not-covered", "not covered"));
        td.title = `${names.get(outlet.article_id)} does not make this claim`;
      } else {
        td.className = "covered";
        td.append(...members.map(renderMember));
      }
      return td;
    });
    row.append(head, ...cells);
    return row;
  });
  $("comparison-body").replaceChildren(...rows);
}

function renderContradictions(result, names, clusters) {
  const items = (result.contradictions || []).map((item) => {
    const li = element("li", "contradiction");
    const pair = element("div", "pair");
    (item.clusters || []).forEach((clusterId, i) => {
      if (i) pair.append(element("span", "versus", " ↔ "));
      const cluster = clusters.get(clusterId);
      const who = cluster ? (cluster.article_ids || []).map((id) => names.get(id)).join(", ") : "";
      pair.append(clusterButton(clusterId), element("span", "muted small", who ? ` ${who}` : ""));
    });
    li.append(pair, element("div", "explanation", item.explanation || ""));
    return li;
  });
  $("contradictions").replaceChildren(...items);
  $("no-contradictions").hidden = items.length > 0;
}

function renderBlindspots(outlets, names, coverage, clusters) {
  const cards = outlets.map((outlet) => {
    const card = element("div", "blindspot-card");
    card.dataset.article = outlet.article_id;
    card.append(element("h4", "", names.get(outlet.article_id)));
    const missing = (coverage.get(outlet.article_id) || { blindspots: [] }).blindspots;
    if (!missing.length) {
      card.append(element("p", "muted small", "Covers every claim of the story."));
      return card;
    }
    card.append(element("p", "muted small", `Leaves out ${missing.length} of ${clusters.size} claims:`));
    const list = element("ul", "blindspot-list");
    missing.forEach((clusterId) => {
      const li = element("li");
      li.dataset.cluster = clusterId;
      const cluster = clusters.get(clusterId);
      li.append(clusterButton(clusterId), element("span", "", ` ${cluster ? cluster.claim : ""}`));
      list.append(li);
    });
    card.append(list);
    return card;
  });
  $("blindspots").replaceChildren(...cards);
}

function renderFailed(result, names) {
  const failed = result.failed || [];
  $("failed").replaceChildren(
    ...failed.map((outlet) => {
      const li = element("li", "failed-outlet");
      li.dataset.article = outlet.article_id;
      const error = outlet.error || {};
      li.append(
        element("strong", "", names.get(outlet.article_id) || "An article"),
        element("code", "", error.code || outlet.status),
        element("span", "", error.message || `the job was ${outlet.status}`),
      );
      return li;
    }),
  );
  $("failed-box").hidden = !failed.length;
}

function renderComparison(story, names) {
  const result = story.result;
  const failedIds = new Set((result.failed || []).map((o) => o.article_id));
  const outlets = (result.outlets || []).filter((o) => !failedIds.has(o.article_id));
  const clusters = new Map((result.clusters || []).map((c) => [c.id, c]));
  const coverage = new Map((result.coverage || []).map((c) => [c.article_id, c]));
  const contradicting = new Map();
  (result.contradictions || []).forEach((item) => {
    const [a, b] = item.clusters || [];
    if (!a || !b) return;
    contradicting.set(a, [...(contradicting.get(a) || []), b]);
    contradicting.set(b, [...(contradicting.get(b) || []), a]);
  });

  showGrounding(result);
  const count = (list) => (list || []).length;
  $("counts").textContent =
    `${count(result.shared)} shared · ${count(result.unique)} one-outlet · ${count(result.contradictions)} contradictions`;
  $("method").textContent =
    result.method === "lexical"
      ? `claims matched by word overlap (token-set ≥ ${result.similarity_threshold ?? "?"}) · ${result.provider}`
      : `claims matched by ${[result.provider, result.model, result.prompt_version].filter(Boolean).join(" · ")}`;
  $("synthesis").textContent = result.synthesis || "";
  renderFailed(result, names);
  renderContradictions(result, names, clusters);
  $("comparison").style.setProperty("--outlets", String(Math.max(outlets.length, 1)));
  renderHeadRow(outlets, names, coverage, clusters.size);
  renderRows(result, outlets, names, contradicting);
  renderBlindspots(outlets, names, coverage, clusters);
  $("story").hidden = false;
}

// --- the story on screen ------------------------------------------------------------------------

function showLanding() {
  if (view.controller) view.controller.abort();
  view.storyId = null;
  view.controller = null;
  $("story").hidden = true;
  $("progress").hidden = true;
  $("story-line").hidden = true;
  $("compose").open = true;
  setStatus("idle");
  showError("");
  document.title = "evenhand — compare several articles";
  recent.markCurrent();
}

async function followStory(storyId, signal) {
  let story = await api(storyPath(storyId), { signal });
  const deadline = Date.now() + 30 * 60 * 1000;
  while (!FINISHED.has(story.status)) {
    renderProgress(story, outletNames(story.articles || []));
    if (Date.now() > deadline) throw new Error("the story did not finish within 30 minutes; try again later");
    story = await api(`${storyPath(storyId)}?wait=${POLL_WAIT_SECONDS}`, { signal });
  }
  return story;
}

// Opens a story: each article's status as it moves, then the comparison or why it failed.
async function openStory(storyId) {
  if (view.controller) view.controller.abort();
  const controller = new AbortController();
  const { signal } = controller;
  view.storyId = storyId;
  view.controller = controller;
  $("story").hidden = true;
  $("progress").hidden = true;
  $("compose").open = false;
  $("recent").open = false;
  $("story-id").textContent = storyId;
  $("story-line").hidden = false;
  showError("");
  recent.markCurrent();
  if (!canOpen("story", storyId)) return;
  setStatus("loading");
  try {
    const story = await followStory(storyId, signal);
    if (signal.aborted) return;
    const names = outletNames(story.articles || []);
    renderProgress(story, names);
    if (story.status === "succeeded" && story.result) {
      renderComparison(story, names);
    } else {
      const error = story.error || {};
      showError(`${error.code || "failed"}: ${error.message || "the comparison failed"}`);
    }
  } catch (error) {
    if (signal.aborted) return;
    showFailure(error);
  }
}

const goToStory = followHash("story", () => view.storyId, openStory, showLanding);

// --- recent stories -----------------------------------------------------------------------------

function recentItem(story) {
  const label = storyLabel(story);
  const title = element("span", `job-title${label.given ? "" : " derived"}`, label.text);
  return recentEntry("story", story, title, goToStory);
}

const recent = recentPanel({
  listId: "recent-stories",
  path: "/v1/stories",
  plural: "stories",
  name: "story",
  shown: () => view.storyId,
  render: recentItem,
});

onKeySaved(() => {
  const storyId = fromHash("story");
  if (storyId) openStory(storyId);
  if ($("recent").open) recent.load();
});

// Start with the fewest articles a story takes; a reload or shared link reopens its story.
for (let i = 0; i < MIN_ARTICLES; i += 1) addEntry();
const linkedStory = fromHash("story");
if (linkedStory) openStory(linkedStory);
else if (currentKey()) $("recent").open = true;
