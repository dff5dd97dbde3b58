// Small DOM helpers: build elements without HTML strings, show API errors
// next to their fields, and a status line.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "html") el.innerHTML = value; // only for server-escaped highlights
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces an element's children, leaving out the absent ones (null, undefined, false). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

let fieldCounter = 0;

/** A labelled control; `control` is an element or a tag name. */
export function field(label, control, hint) {
  const input = typeof control === "string" ? h(control) : control;
  if (!input.id) input.id = `f${++fieldCounter}`;
  const error = h("p", { class: "field-error", id: `${input.id}-error`, hidden: true });
  input.setAttribute("aria-describedby", error.id);
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("p", { class: "muted" }, hint) : null, error);
}

/** Shows an API error by the field it names, or at the top of the form. */
export function showError(form, error) {
  for (const p of form.querySelectorAll(".field-error, .error")) {
    p.hidden = true;
    p.textContent = "";
  }
  // `packet.state` or `contact.phone` is shown by the `state` or `phone` input.
  const parts = (error.field || "").split(/[.[\]]/).filter(Boolean).reverse();
  const named = parts.map((p) => form.querySelector(`[name="${CSS.escape(p)}"]`)).find(Boolean);
  const target = named ? form.querySelector(`#${named.id}-error`) : form.querySelector(".error");
  if (target) {
    target.textContent = error.message;
    target.hidden = false;
    (named || target).focus?.();
  } else {
    toast(error.message);
  }
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 4000);
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const BADGES = {
  open: ["cap-open", "Open now"],
  short: ["cap-short", "Short wait"],
  long: ["cap-long", "Long wait"],
  unknown: ["cap-unknown", "Capacity unknown"],
};

/** The capacity badge: open now, short wait, long wait, or unknown (stale or never confirmed). */
export function capacityBadge(hit) {
  let kind = "unknown";
  if (hit.capacity_freshness === "fresh") {
    if (hit.open_slots > 0 || hit.waitlist === "none") kind = "open";
    else if (hit.waitlist === "short") kind = "short";
    else kind = "long";
  }
  const [cls, text] = BADGES[kind];
  return h("span", { class: `cap ${cls}` }, text);
}
