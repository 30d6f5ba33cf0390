// What evenhand's pages share: the API key (kept in localStorage), calls to the API, the status
// line, the error box and small DOM helpers. Every piece of API data is rendered with textContent
// / text nodes: article text is untrusted.

export const $ = (id) => document.getElementById(id);
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const KEY_STORAGE = "evenhand.key";

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
