// evenhand's web page: submit, watch the job live, render the result.
// Every piece of API data is rendered with textContent: article text is untrusted.
"use strict";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["succeeded", "failed", "canceled"]);

const keyInput = $("api-key");
keyInput.value = localStorage.getItem("evenhand.key") || "";

function headers(json) {
  const h = { Authorization: `Bearer ${keyInput.value.trim()}` };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
  return body;
}

function setStatus(status) {
  $("status").textContent = status;
}

// Server-sent events read with fetch (an EventSource cannot send the Authorization header).
async function followEvents(jobId) {
  const response = await fetch(`/v1/jobs/${jobId}/events`, { headers: headers(false) });
  if (!response.ok || !response.body) throw new Error(`events: ${response.status}`);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (event === "status") setStatus(JSON.parse(data).status);
      if (event === "job") return JSON.parse(data);
    }
  }
  throw new Error("the event stream ended early");
}

async function pollUntilDone(jobId) {
  for (let i = 0; i < 60; i += 1) {
    const job = await api(`/v1/jobs/${jobId}?wait=20`, { headers: headers(false) });
    setStatus(job.status);
    if (FINISHED.has(job.status)) return job;
  }
  throw new Error("the job did not finish in time");
}

// Python offsets count code points; JavaScript strings count UTF-16 units. Work on code points.
function highlight(container, text, quotes, loaded) {
  const chars = Array.from(text);
  const bounds = new Set([0, chars.length]);
  const spans = [];
  quotes.forEach((q) => spans.push({ ...q, kind: "quote" }));
  loaded.forEach((t) => spans.push({ ...t, kind: "loaded" }));
  for (const s of spans) {
    if (s.start >= 0 && s.end <= chars.length && s.start < s.end) {
      bounds.add(s.start);
      bounds.add(s.end);
    }
  }
  const cuts = [...bounds].sort((a, b) => a - b);
  container.replaceChildren();
  for (let i = 0; i + 1 < cuts.length; i += 1) {
    const [from, to] = [cuts[i], cuts[i + 1]];
    const covering = spans.filter((s) => s.start <= from && s.end >= to && s.start < s.end);
    const piece = chars.slice(from, to).join("");
    if (!covering.length) {
      container.appendChild(document.createTextNode(piece));
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
    if (covering.some((s) => s.kind === "loaded")) mark.classList.add("loaded");
    container.appendChild(mark);
  }
}

function selectPoint(index) {
  document.querySelectorAll(".point").forEach((el) => el.classList.toggle("selected", el.dataset.point === String(index)));
  const marks = document.querySelectorAll("#article mark.quote");
  marks.forEach((m) => m.classList.toggle("active", m.dataset.point === String(index)));
  const first = document.querySelector(`mark.quote[data-point="${index}"]`);
  if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
}

function renderResult(article) {
  const result = article.result;
  const { quotes: total, verified } = result.grounding;
  const badge = $("grounding");
  badge.textContent = `${verified}/${total} quotes verified`;
  badge.className = `badge ${verified === total ? "ok" : "warn"}`;
  $("article-type").textContent = result.article_type;
  $("provider").textContent =
    result.provider === "extractive"
      ? "offline extractive summary (no LLM configured)"
      : `${result.provider} · ${result.model} · ${result.prompt_version}`;
  $("thesis").textContent = result.thesis;
  $("summary").textContent = result.summary;

  const list = $("points");
  list.replaceChildren();
  const quotes = [];
  result.argument_points.forEach((point, i) => {
    const item = document.createElement("li");
    item.className = "point";
    item.dataset.point = String(i);
    const claim = document.createElement("div");
    claim.className = "claim";
    claim.textContent = point.claim;
    const speaker = document.createElement("div");
    speaker.className = "speaker";
    speaker.textContent = `— ${point.speaker}`;
    item.append(claim, speaker);
    if (point.premises.length) {
      const premises = document.createElement("ul");
      premises.className = "premises";
      point.premises.forEach((p) => {
        const li = document.createElement("li");
        li.textContent = p;
        premises.appendChild(li);
      });
      item.appendChild(premises);
    }
    const evidence = document.createElement("ul");
    evidence.className = "evidence";
    point.evidence.forEach((ev, j) => {
      const li = document.createElement("li");
      li.className = ev.verified ? "verified" : "unverified";
      li.dataset.mark = ev.verified ? "✓" : "?";
      li.title = ev.verified ? "found in the article" : "not found in the article";
      li.textContent = `“${ev.quote}”`;
      evidence.appendChild(li);
      if (ev.verified) quotes.push({ start: ev.start, end: ev.end, point: i, index: j });
    });
    item.appendChild(evidence);
    item.addEventListener("click", () => selectPoint(i));
    list.appendChild(item);
  });
  highlight($("article"), article.clean_text || "", quotes, result.loaded_language);
  $("result").hidden = false;
}

$("submit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("result").hidden = true;
  localStorage.setItem("evenhand.key", keyInput.value.trim());
  const text = $("article-text").value;
  const url = $("article-url").value.trim();
  if (!text.trim() && !url) {
    showError("Paste an article or give a URL.");
    return;
  }
  const button = $("submit");
  button.disabled = true;
  try {
    const body = text.trim() ? { text } : { url };
    const accepted = await api("/v1/articles", { method: "POST", headers: headers(true), body: JSON.stringify(body) });
    setStatus(accepted.status);
    let job;
    try {
      job = await followEvents(accepted.job_id);
    } catch (streamError) {
      job = await pollUntilDone(accepted.job_id);
    }
    setStatus(job.status);
    if (job.status === "failed") {
      showError(`${job.error.code}: ${job.error.message}`);
    } else if (job.status === "succeeded") {
      renderResult(await api(`/v1/articles/${accepted.article_id}`, { headers: headers(false) }));
    }
  } catch (error) {
    setStatus("error");
    showError(error.message);
  } finally {
    button.disabled = false;
  }
});
