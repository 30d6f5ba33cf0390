// evenhand's web page: submit an article, watch its job live, render the result.
// Every piece of API data is rendered with textContent / text nodes: article text is untrusted.
"use strict";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["succeeded", "failed", "canceled"]);
const KEY_STORAGE = "evenhand.key";

const keyInput = $("api-key");
try {
  keyInput.value = localStorage.getItem(KEY_STORAGE) || "";
} catch (_) {
  // storage may be disabled (private mode, file policy): the field still works
}

function rememberKey(key) {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch (_) {
    // not fatal
  }
}

function headers(json) {
  const h = { Authorization: `Bearer ${keyInput.value.trim()}`, Accept: "application/json" };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setStatus(status) {
  const el = $("status");
  el.textContent = status;
  el.dataset.status = status;
}

// A failed request: the API answers RFC 9457 problem+json; `detail` says what is wrong.
class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// Server-sent events read with fetch() (an EventSource cannot send the Authorization header).
// Returns the final job; throws when the stream cannot be opened or ends without a `job` event.
async function followEvents(jobId) {
  const response = await fetch(`/v1/jobs/${encodeURIComponent(jobId)}/events`, {
    headers: { ...headers(false), Accept: "text/event-stream" },
    cache: "no-store",
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

async function pollUntilDone(jobId) {
  const deadline = Date.now() + 30 * 60 * 1000;
  while (Date.now() < deadline) {
    const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}?wait=20`, { headers: headers(false) });
    setStatus(job.status);
    if (FINISHED.has(job.status)) return job;
  }
  throw new Error("the job did not finish within 30 minutes; try again later");
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

function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
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
    evidence.forEach((ev) => {
      const li = element("li", ev.verified ? "verified" : "unverified");
      const sign = element("span", "sign", ev.verified ? "✓" : "?");
      sign.title = ev.verified ? "found in the article" : "not found in the article";
      sign.setAttribute("aria-label", sign.title);
      li.append(sign, element("q", "", ev.quote || ""));
      list.append(li);
    });
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

function renderResult(article) {
  const result = article.result;
  const grounding = result.grounding || { quotes: 0, verified: 0 };
  const badge = $("grounding");
  badge.textContent = `${grounding.verified}/${grounding.quotes} quotes verified`;
  badge.className = `badge ${grounding.verified === grounding.quotes ? "ok" : "warn"}`;
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

async function run(body) {
  const accepted = await api("/v1/articles", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
  setStatus(accepted.status);
  $("job-id").textContent = accepted.job_id;
  $("job-line").hidden = false;
  let job;
  if (FINISHED.has(accepted.status)) {
    job = await api(`/v1/jobs/${encodeURIComponent(accepted.job_id)}`, { headers: headers(false) });
  } else {
    try {
      job = await followEvents(accepted.job_id);
    } catch (streamError) {
      if (streamError instanceof ApiError && (streamError.status === 401 || streamError.status === 403)) throw streamError;
      job = await pollUntilDone(accepted.job_id);
    }
  }
  setStatus(job.status);
  if (job.status === "succeeded") {
    renderResult(await api(`/v1/articles/${encodeURIComponent(accepted.article_id)}`, { headers: headers(false) }));
  } else if (job.status === "failed") {
    const error = job.error || {};
    showError(`${error.code || "failed"}: ${error.message || "the job failed"}`);
  } else if (job.status === "canceled") {
    showError("The job was canceled.");
  }
}

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const key = keyInput.value.trim();
  const text = $("article-text").value;
  const url = $("article-url").value.trim();
  if (!key) {
    showError("Enter your API key.");
    keyInput.focus();
    return;
  }
  if (!text.trim() && !url) {
    showError("Paste an article or give its URL.");
    return;
  }
  rememberKey(key);
  $("result").hidden = true;
  $("job-line").hidden = true;
  const button = $("submit");
  button.disabled = true;
  setStatus("submitting");
  try {
    await run(text.trim() ? { text } : { url });
  } catch (error) {
    setStatus("error");
    showError(error.message);
  } finally {
    button.disabled = false;
  }
});
