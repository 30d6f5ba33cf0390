// evenhand's web page: submit an article, watch its job live, render the result; the open job
// lives in the URL (#job=<id>) so a reload or a shared link reopens it.
// Every piece of API data is rendered with textContent / text nodes: article text is untrusted.
import {
  $,
  ApiError,
  api,
  canOpen,
  currentKey,
  element,
  followHash,
  fromHash,
  headers,
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

const FINISHED = new Set(["succeeded", "failed", "canceled"]);
const SUPPORT_HELP = {
  supports: "the quote supports the claim",
  partial: "the quote supports part of the claim",
  unrelated: "the quote does not bear on the claim",
};

// The job on screen: its id and the controller that stops following it when another opens.
const view = { jobId: null, controller: null };
// article id -> the label shown for it (its title, else its URL or first line)
const labels = new Map();

const jobPath = (jobId) => `/v1/jobs/${encodeURIComponent(jobId)}`;
const articlePath = (articleId) => `/v1/articles/${encodeURIComponent(articleId)}`;

function jobFromHash() {
  return fromHash("job");
}

// Server-sent events read with fetch() (an EventSource cannot send the Authorization header).
// Returns the final job; throws when the stream cannot be opened or ends without a `job` event.
async function followEvents(jobId, signal) {
  const response = await fetch(`${jobPath(jobId)}/events`, {
    headers: { ...headers(false), Accept: "text/event-stream" },
    cache: "no-store",
    signal,
  });
  if (!response.ok || !response.body) {
    const body = await response.json().catch(() => null);
    throw new ApiError(response.status, body);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const job = handleEvent(block);
        if (job) return job;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  throw new Error("the event stream ended before the job did");
}

// One SSE block ("event: x\ndata: y"): updates the status; returns the job on the final event.
function handleEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // comment / keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (!data.length) return null;
  const payload = JSON.parse(data.join("\n"));
  if (event === "status" && payload.status) setStatus(payload.status);
  if (event === "job") return payload;
  return null;
}

async function pollUntilDone(jobId, signal) {
  const deadline = Date.now() + 30 * 60 * 1000;
  while (Date.now() < deadline) {
    const job = await api(`${jobPath(jobId)}?wait=20`, { signal });
    setStatus(job.status);
    if (FINISHED.has(job.status)) return job;
  }
  throw new Error("the job did not finish within 30 minutes; try again later");
}

async function untilFinished(jobId, signal) {
  try {
    return await followEvents(jobId, signal);
  } catch (streamError) {
    if (signal.aborted) throw streamError;
    if (streamError instanceof ApiError && (streamError.status === 401 || streamError.status === 403)) throw streamError;
    return pollUntilDone(jobId, signal);
  }
}

// Highlights the article: `spans` are {start, end, kind: "quote"|"loaded", ...} with offsets in
// code points (Python str indices). JavaScript strings count UTF-16 units, so the text is cut as
// an array of code points. Overlapping spans: the text is split at every boundary and each
// segment is one <mark> with the classes of all the spans that cover it.
function highlight(container, text, spans) {
  const chars = Array.from(text);
  const valid = spans.filter(
    (s) => Number.isInteger(s.start) && Number.isInteger(s.end) && s.start >= 0 && s.start < s.end && s.end <= chars.length,
  );
  const bounds = new Set([0, chars.length]);
  for (const s of valid) {
    bounds.add(s.start);
    bounds.add(s.end);
  }
  const cuts = [...bounds].sort((a, b) => a - b);
  const fragment = document.createDocumentFragment();
  for (let i = 0; i + 1 < cuts.length; i += 1) {
    const from = cuts[i];
    const to = cuts[i + 1];
    const piece = chars.slice(from, to).join("");
    const covering = valid.filter((s) => s.start <= from && s.end >= to);
    if (!covering.length) {
      fragment.appendChild(document.createTextNode(piece));
      continue;
    }
    const mark = document.createElement("mark");
    mark.textContent = piece;
    const quote = covering.find((s) => s.kind === "quote");
    if (quote) {
      mark.classList.add("quote");
      mark.dataset.point = String(quote.point);
      mark.dataset.quote = String(quote.index);
    }
    const loaded = covering.find((s) => s.kind === "loaded");
    if (loaded) {
      mark.classList.add("loaded");
      mark.dataset.loaded = String(loaded.index);
      mark.title = `loaded term: ${loaded.term}`;
    }
    fragment.appendChild(mark);
  }
  container.replaceChildren(fragment);
}

function selectPoint(index) {
  const key = String(index);
  document.querySelectorAll("#points .point").forEach((el) => {
    const on = el.dataset.point === key;
    el.classList.toggle("selected", on);
    el.setAttribute("aria-pressed", on ? "true" : "false");
  });
  document.querySelectorAll("#article mark.quote").forEach((m) => m.classList.toggle("active", m.dataset.point === key));
  const first = document.querySelector(`#article mark.quote[data-point="${key}"]`);
  if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
}

function renderEvidence(ev) {
  const li = element("li", ev.verified ? "verified" : "unverified");
  li.append(quoteSign(ev.verified), element("q", "", ev.quote || ""));
  // `support` (does the quote back the claim?) may be absent from a result; null shows nothing
  if (typeof ev.support === "string" && ev.support) {
    const known = Object.hasOwn(SUPPORT_HELP, ev.support);
    const badge = element("span", `support ${known ? ev.support : "other"}`, ev.support);
    badge.title = known ? SUPPORT_HELP[ev.support] : `support: ${ev.support}`;
    li.append(badge);
  }
  return li;
}

function renderPoint(point, i) {
  const item = element("li", "point");
  item.dataset.point = String(i);
  item.tabIndex = 0;
  item.setAttribute("role", "button");
  item.setAttribute("aria-pressed", "false");
  item.append(element("div", "claim", point.claim || ""));
  if (point.speaker) item.append(element("div", "speaker", `— ${point.speaker}`));
  const premises = point.premises || [];
  if (premises.length) {
    const list = element("ul", "premises");
    premises.forEach((p) => list.append(element("li", "", p)));
    item.append(list);
  }
  const evidence = point.evidence || [];
  if (evidence.length) {
    const list = element("ul", "evidence");
    evidence.forEach((ev) => list.append(renderEvidence(ev)));
    item.append(list);
  }
  item.addEventListener("click", () => selectPoint(i));
  item.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      selectPoint(i);
    }
  });
  return item;
}

// What to call an article: its title; without one, its URL or the first line of its text.
function articleLabel(article) {
  if (article.title && article.title.trim()) return { text: article.title.trim(), given: true };
  if (article.url) return { text: article.url, given: false };
  const first = (article.clean_text || "").split("\n").find((line) => line.trim());
  if (first) {
    const chars = Array.from(first.trim());
    return { text: chars.length > 90 ? `${chars.slice(0, 90).join("")}…` : chars.join(""), given: false };
  }
  return { text: "Untitled article", given: false };
}

function rememberLabel(article) {
  const label = articleLabel(article);
  // an article not cleaned yet may get a better label later
  if (label.given || article.url || article.clean_text) labels.set(article.id, label);
  return label;
}

function renderHead(article) {
  const label = rememberLabel(article);
  const title = $("title");
  title.textContent = label.text;
  title.classList.toggle("derived", !label.given);
  title.title = label.given ? "" : "No title was given: this is the article's address or first line.";
  document.title = `${label.text} — evenhand`;
  const byline = $("byline");
  byline.replaceChildren();
  const parts = [];
  if (article.source) parts.push(document.createTextNode(article.source));
  if (article.url && /^https?:\/\//i.test(article.url)) {
    const link = element("a", "", article.url);
    link.href = article.url;
    link.rel = "noopener noreferrer";
    link.target = "_blank";
    parts.push(link);
  }
  const submitted = when(article.created_at);
  if (submitted) parts.push(document.createTextNode(`submitted ${submitted}`));
  parts.forEach((part, i) => {
    if (i) byline.append(" · ");
    byline.append(part);
  });
  byline.hidden = !parts.length;
}

function renderResult(result, article) {
  renderHead(article);
  showGrounding(result);
  $("article-type").textContent = result.article_type || "unknown type";
  $("provider").textContent =
    result.provider === "extractive"
      ? "offline extractive summary"
      : [result.provider, result.model, result.prompt_version].filter(Boolean).join(" · ");
  $("thesis").textContent = result.thesis || "";
  $("summary").textContent = result.summary || "";

  const points = result.argument_points || [];
  const spans = [];
  $("points").replaceChildren(...points.map(renderPoint));
  points.forEach((point, i) =>
    (point.evidence || []).forEach((ev, j) => {
      if (ev.verified) spans.push({ start: ev.start, end: ev.end, kind: "quote", point: i, index: j });
    }),
  );
  (result.loaded_language || []).forEach((t, k) => spans.push({ ...t, kind: "loaded", index: k }));
  highlight($("article"), article.clean_text || "", spans);
  $("article").scrollTop = 0;
  $("result").hidden = false;
}

// --- the job on screen --------------------------------------------------------------------------

function showLanding() {
  if (view.controller) view.controller.abort();
  view.jobId = null;
  view.controller = null;
  $("result").hidden = true;
  $("job-line").hidden = true;
  $("compose").open = true;
  setStatus("idle");
  showError("");
  document.title = "evenhand — neutral summaries and argument maps";
  recent.markCurrent();
}

// Opens a job: shows its status, follows it until it ends, then its result or why it failed.
async function openJob(jobId) {
  if (view.controller) view.controller.abort();
  const controller = new AbortController();
  const { signal } = controller;
  view.jobId = jobId;
  view.controller = controller;
  $("result").hidden = true;
  $("compose").open = false;
  $("recent").open = false;
  $("job-id").textContent = jobId;
  $("job-line").hidden = false;
  showError("");
  recent.markCurrent();
  if (!canOpen("job", jobId)) return;
  setStatus("loading");
  try {
    let job = await api(jobPath(jobId), { signal });
    setStatus(job.status);
    if (!FINISHED.has(job.status)) job = await untilFinished(jobId, signal);
    setStatus(job.status);
    if (job.status === "succeeded") {
      const article = await api(articlePath(job.article_id), { signal });
      if (signal.aborted) return;
      const result = job.result || article.result;
      if (!result) throw new Error("the job succeeded but its result could not be read");
      renderResult(result, article);
    } else if (job.status === "failed") {
      const error = job.error || {};
      showError(`${error.code || "failed"}: ${error.message || "the job failed"}`);
    } else if (job.status === "canceled") {
      showError("The job was canceled.");
    }
  } catch (error) {
    if (signal.aborted) return;
    showFailure(error);
  }
}

const goToJob = followHash("job", () => view.jobId, openJob, showLanding);

// --- recent jobs --------------------------------------------------------------------------------

function recentItem(job) {
  const known = labels.get(job.article_id);
  const title = element("span", `job-title${known && !known.given ? " derived" : ""}`, known ? known.text : "…");
  const li = recentEntry("job", job, title, goToJob);
  li.querySelector("a").dataset.article = job.article_id;
  return li;
}

// The titles live on the articles (a job carries only its article's id): one read per article.
async function fillTitles(items, newest) {
  const missing = [...new Set(items.map((job) => job.article_id))].filter((id) => !labels.has(id));
  await Promise.all(
    missing.map((id) =>
      api(articlePath(id))
        .then(rememberLabel)
        .catch(() => null),
    ),
  );
  if (!newest()) return;
  document.querySelectorAll("#recent-jobs a").forEach((a) => {
    const label = labels.get(a.dataset.article);
    const span = a.querySelector(".job-title");
    if (!label || !span) return;
    span.textContent = label.text;
    span.classList.toggle("derived", !label.given);
  });
}

const recent = recentPanel({
  listId: "recent-jobs",
  path: "/v1/jobs",
  plural: "jobs",
  name: "job",
  shown: () => view.jobId,
  render: recentItem,
  loaded: fillTitles,
});

// --- forms --------------------------------------------------------------------------------------

onKeySaved(() => {
  const jobId = jobFromHash();
  if (jobId) openJob(jobId);
  if ($("recent").open) recent.load();
});

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const key = requireKey();
  const title = $("article-title").value.trim();
  const text = $("article-text").value;
  const url = $("article-url").value.trim();
  if (!key) return;
  if (!text.trim() && !url) {
    showError("Paste an article or give its URL.");
    return;
  }
  rememberKey(key);
  const body = text.trim() ? { text } : { url };
  if (title) body.title = title;
  await submitForm("/v1/articles", body, (accepted) => goToJob(accepted.job_id));
});

// A reload or a shared link: reopen the job in the URL; else the form, with the key's recent jobs.
// A story's link belongs to the story page.
const linkedJob = jobFromHash();
if (fromHash("story")) window.location.replace(`/story${window.location.hash}`);
else if (linkedJob) openJob(linkedJob);
else if (currentKey()) $("recent").open = true;
