// What evenhand's pages share: the API key (kept in localStorage), calls to the API, the status
// line, the error box, the item in the URL, the recent list and small DOM helpers. Every piece of
// API data is rendered with textContent / text nodes: article text is untrusted.

export const $ = (id) => document.getElementById(id);
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_STORAGE = "evenhand.key";
const RECENT_PAGE = 10;

export const keyInput = $("api-key");
try {
  keyInput.value = localStorage.getItem(KEY_STORAGE) || "";
} catch (_) {
  // storage may be disabled (private mode, file policy): the field still works
}

export function currentKey() {
  return keyInput.value.trim();
}

export function rememberKey(key) {
  try {
    localStorage.setItem(KEY_STORAGE, key);
  } catch (_) {
    // not fatal
  }
}

export function headers(json) {
  const h = { Authorization: `Bearer ${currentKey()}`, Accept: "application/json" };
  if (json) h["Content-Type"] = "application/json";
  return h;
}

// `kind` "notice" asks for something (the key) rather than reporting a failure.
export function showError(message, kind = "error") {
  const box = $("error");
  box.textContent = message || "";
  box.className = kind;
  box.hidden = !message;
}

export function setStatus(status) {
  const el = $("status");
  el.textContent = status;
  el.dataset.status = status;
}

// A failed request: the API answers RFC 9457 problem+json; `detail` says what is wrong.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
  }
}

export async function api(path, options = {}) {
  const response = await fetch(path, { headers: headers(false), ...options });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

// The value of `name` in the address's fragment (#job=..., #story=...).
export function fromHash(name) {
  return new URLSearchParams(window.location.hash.slice(1)).get(name);
}

export function element(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

export function when(timestamp) {
  const date = new Date(timestamp);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// One evidence quote: ✓ found in the article, ? not found.
export function quoteSign(verified) {
  const sign = element("span", "sign", verified ? "✓" : "?");
  sign.title = verified ? "found in the article" : "not found in the article";
  sign.setAttribute("aria-label", sign.title);
  return sign;
}

// The key, or "" after asking for it.
export function requireKey() {
  const key = currentKey();
  if (!key) {
    showError("Enter your API key.");
    keyInput.focus();
  }
  return key;
}

export function showFailure(error) {
  setStatus("error");
  showError(error.message);
}

// Whether the `noun` (job, story) a link names can be opened; if not, says why.
export function canOpen(noun, id) {
  if (!UUID.test(id)) {
    setStatus("error");
    showError(`"${id}" in this link is not a ${noun} id.`);
    return false;
  }
  if (!currentKey()) {
    setStatus("idle");
    showError(`Enter your API key to open ${noun} ${id}.`, "notice");
    keyInput.focus();
    return false;
  }
  return true;
}

// Posts the form's request with the #submit button held down; `accepted` gets the answer.
export async function submitForm(path, body, accepted) {
  const button = $("submit");
  button.disabled = true;
  setStatus("submitting");
  try {
    accepted(await api(path, { method: "POST", headers: headers(true), body: JSON.stringify(body) }));
  } catch (error) {
    showFailure(error);
  } finally {
    button.disabled = false;
  }
}

// The key form: remembers the key, then `saved()` reloads what the page shows with it.
export function onKeySaved(saved) {
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = requireKey();
    if (!key) return;
    rememberKey(key);
    showError("");
    saved();
  });
}

export function showGrounding(result) {
  const grounding = result.grounding || { quotes: 0, verified: 0 };
  const badge = $("grounding");
  badge.textContent = `${grounding.verified}/${grounding.quotes} quotes verified`;
  badge.className = `badge ${grounding.verified === grounding.quotes ? "ok" : "warn"}`;
}

// The page's item lives in the URL (#name=<id>). Returns goTo(id): a new history entry (so Back
// returns to the previous item), then open(id). Back/Forward, or a link typed or pasted into the
// address bar, open the item it names, or the landing view without one.
export function followHash(name, shown, open, showLanding) {
  function follow() {
    const id = fromHash(name);
    if (!id) {
      if (shown()) showLanding();
    } else if (id !== shown()) open(id);
  }
  window.addEventListener("hashchange", follow);
  window.addEventListener("popstate", follow);
  return (id) => {
    if (fromHash(name) !== id) window.history.pushState(null, "", `#${name}=${encodeURIComponent(id)}`);
    open(id);
  };
}

// One entry of the recent list: a link to #name=<id> with its title, status and time.
export function recentEntry(name, item, title, goTo) {
  const li = element("li");
  const link = element("a", "job-link");
  link.href = `#${name}=${encodeURIComponent(item.id)}`;
  link.dataset[name] = item.id;
  const status = element("span", "job-status", item.status);
  status.dataset.status = item.status;
  link.append(title, status, element("span", "job-when muted small", when(item.created_at)));
  link.addEventListener("click", (event) => {
    event.preventDefault();
    goTo(item.id);
  });
  li.append(link);
  return li;
}

// The "recent" panel: the key's `plural` (jobs, stories) from `path`, a page at a time, in the
// list `listId`, the one on screen (`shown()`, by data-`name`) marked. `render` makes an item's
// entry; `loaded(items, newest)` runs after a page is shown (`newest()`: no newer listing began).
export function recentPanel({ listId, path, plural, name, shown, render, loaded = async () => {} }) {
  let round = 0; // a newer listing replaces an older one still loading
  let cursor = null;

  function markCurrent() {
    document.querySelectorAll(`#${listId} a`).forEach((a) => {
      if (a.dataset[name] === shown()) a.setAttribute("aria-current", "true");
      else a.removeAttribute("aria-current");
    });
  }

  async function load(more = false) {
    const mine = more ? round : ++round;
    const list = $(listId);
    const empty = $("recent-empty");
    const button = $("recent-more");
    if (!currentKey()) {
      list.replaceChildren();
      button.hidden = true;
      empty.textContent = `Enter your API key to see its ${plural}.`;
      empty.hidden = false;
      return;
    }
    const query = new URLSearchParams({ limit: String(RECENT_PAGE) });
    if (more && cursor) query.set("cursor", cursor);
    try {
      const answer = await api(`${path}?${query}`);
      if (mine !== round) return;
      cursor = answer.next_cursor;
      const items = answer.items || [];
      if (more) list.append(...items.map(render));
      else list.replaceChildren(...items.map(render));
      button.hidden = !cursor;
      empty.textContent = `No ${plural} yet for this key.`;
      empty.hidden = list.children.length > 0;
      markCurrent();
      await loaded(items, () => mine === round);
    } catch (error) {
      if (mine !== round) return;
      if (!more) list.replaceChildren();
      button.hidden = true;
      empty.textContent = `Could not list the ${plural}: ${error.message}`;
      empty.hidden = false;
    }
  }

  $("recent").addEventListener("toggle", () => {
    if ($("recent").open) load();
  });
  $("recent-more").addEventListener("click", () => load(true));
  return { load, markCurrent };
}
