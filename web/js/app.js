// The Kith web client: a hash router and one function per page.

import * as api from "./api.js";
import { h, fill, field, showError, toast, when, debounce, capacityBadge } from "./ui.js";
import { groupsPage, groupPage } from "./groups.js";
import { sessionsPage } from "./sessions.js";
import { forgotPasswordPage, resetPasswordPage, signInsSection, verifyEmailPage, emailSection, verificationBanner } from "./account.js";
import { twoStepSection } from "./two_step.js";
import { render, onLeave, leave } from "./page.js";

let taxonomy = null;

async function vocabulary() {
  taxonomy ??= await api.call("GET", "/taxonomy");
  return taxonomy;
}

function label(kind, slug) {
  return taxonomy?.[kind]?.find((t) => t.slug === slug)?.label || slug;
}

function options(terms, selected = []) {
  return terms.map((t) => h("option", { value: t.slug, selected: selected.includes(t.slug) }, t.label));
}

function multi(name, terms, selected) {
  return h("select", { name, multiple: true, size: 6 }, options(terms, selected));
}

function values(select) {
  return [...select.selectedOptions].map((o) => o.value);
}

// ---------- sign in, sign up ----------

function signInPage() {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, "Sign in"),
    h("p", { class: "error", hidden: true }),
    field("Email", email), field("Password", password),
    h("p", {}, h("button", { type: "submit" }, "Sign in")),
    h("p", { class: "muted" }, h("a", { href: "#/forgot-password" }, "Forgot your password?")),
    h("p", { class: "muted" }, "New to Kith? ", h("a", { href: "#/signup" }, "Create an account")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const challenge = await api.signIn(email.value, password.value);
      if (challenge) return codeStep(challenge);
      location.hash = "#/search";
    } catch (err) {
      showError(form, err);
    }
  });
  render(form);
}

// The second step of a two-step sign-in.
function codeStep(challenge) {
  const code = h("input", { name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, "Enter your code"),
    h("p", { class: "muted" }, challenge.message),
    h("p", { class: "error", hidden: true }),
    field("Code", code, "Six digits from your authenticator app, or a recovery code."),
    h("p", {}, h("button", { type: "submit" }, "Sign in")),
    h("p", { class: "muted" }, h("a", { href: "#/signin", onclick: () => signInPage() }, "Start again")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.signInWithCode(challenge.challenge, code.value);
      location.hash = "#/search";
    } catch (err) {
      if (err.code === "invalid_challenge") toast(err.message);
      showError(form, err);
    }
  });
  render(form);
  code.focus();
}

function signUpPage() {
  const name = h("input", { name: "display_name", autocomplete: "name", required: true });
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, "Create your Kith account"),
    h("p", { class: "error", hidden: true }),
    field("Your name, as colleagues will see it", name), field("Email", email),
    field("Password", password, "At least 12 characters; a few unrelated words work well."),
    h("p", {}, h("button", { type: "submit" }, "Create account")),
    h("p", { class: "muted" }, "Already have one? ", h("a", { href: "#/signin" }, "Sign in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const registered = await api.signUp(email.value, password.value, name.value);
      toast(registered.message);
      location.hash = "#/profile";
    } catch (err) {
      showError(form, err);
    }
  });
  render(form);
}

// ---------- profile and capacity ----------

// Which claimed states an administrator verified, and what an edit does to that.
function licenceStatus(profile) {
  const waiting = profile.license_states.filter((s) => !profile.verified_states.includes(s));
  if (!profile.license_states.length) {
    return h("p", { class: "muted licence-status" }, "Name the states you are licensed in: colleagues can refer clients to you only where an administrator has verified your licence.");
  }
  return h("p", { class: "muted licence-status" },
    profile.verified_states.length ? h("span", { class: "cap cap-open" }, `Verified in ${profile.verified_states.join(", ")}`) : null,
    profile.verified_states.length && waiting.length ? " " : null,
    waiting.length ? h("span", { class: "cap cap-unknown" }, `Not yet verified: ${waiting.join(", ")}`) : null,
    " Referrals reach you only in verified states. A new licence number clears the verification; an administrator checks it again.");
}

const WAITLIST = [["none", "No wait: can start now"], ["short", "Under 2 weeks"], ["medium", "2 to 6 weeks"], ["long", "Over 6 weeks"]];

async function profilePage() {
  const [profile, tax] = await Promise.all([api.call("GET", "/profiles/me"), vocabulary()]);
  const slots = h("input", { name: "open_slots", type: "number", min: 0, value: profile.open_slots });
  const wait = h("select", { name: "waitlist" }, WAITLIST.map(([v, t]) => h("option", { value: v, selected: profile.waitlist === v }, t)));
  const accepting = h("input", { name: "accepting_referrals", type: "checkbox", checked: profile.accepting_referrals });
  const freshness = { fresh: "confirmed recently", stale: "not confirmed in the last 14 days", unknown: "never confirmed" }[profile.capacity_freshness];
  const capForm = h("form", { class: "card capacity", "aria-labelledby": "cap-title" },
    h("h2", { id: "cap-title" }, "Capacity"),
    h("p", {}, capacityBadge(profile), " ", h("span", { id: "freshness" }, `${profile.open_slots} open slots, ${freshness}`),
      profile.capacity_confirmed_at ? h("span", { class: "muted" }, ` (last ${when(profile.capacity_confirmed_at)})`) : null),
    h("p", { class: "error", hidden: true }),
    h("div", { class: "row" }, field("Open slots", slots), field("Waitlist", wait)),
    h("label", { class: "check" }, accepting, "Accepting referrals"),
    h("p", { class: "row" },
      h("button", { type: "submit" }, "Update capacity"),
      h("button", { type: "button", class: "secondary", id: "confirm", onclick: async () => {
        await api.call("POST", "/profiles/me/capacity/confirm");
        // The page is drawn afresh before it says so: nothing typed meanwhile is lost.
        await profilePage();
        toast("Capacity confirmed as still accurate.");
      } }, "Still accurate")));
  capForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.call("PATCH", "/profiles/me/capacity", { open_slots: Number(slots.value), waitlist: wait.value, accepting_referrals: accepting.checked });
      await profilePage();
      toast("Capacity saved.");
    } catch (err) {
      showError(capForm, err);
    }
  });

  const text = (name, value, attrs = {}) => h("input", { name, value: value ?? "", ...attrs });
  const inputs = {
    display_name: text("display_name", profile.display_name),
    credentials: text("credentials", profile.credentials.join(", ")),
    license_states: text("license_states", profile.license_states.join(", "), { placeholder: "IL, WI" }),
    license_number: text("license_number", profile.license_number),
    bio: h("textarea", { name: "bio" }, profile.bio),
    specialties: multi("specialties", tax.specialties, profile.specialties),
    modalities: multi("modalities", tax.modalities, profile.modalities),
    populations: multi("populations", tax.populations, profile.populations),
    languages: multi("languages", tax.languages, profile.languages),
    insurance: multi("insurance", tax.insurance, profile.insurance),
    fee_min: text("fee_min", profile.fee_min, { type: "number", min: 0 }),
    fee_max: text("fee_max", profile.fee_max, { type: "number", min: 0 }),
    city: text("city", profile.city), state: text("state", profile.state), postal_code: text("postal_code", profile.postal_code),
    latitude: text("latitude", profile.latitude, { type: "number", step: "any" }),
    longitude: text("longitude", profile.longitude, { type: "number", step: "any" }),
  };
  const box = (name, checked, text) => h("label", { class: "check" }, h("input", { type: "checkbox", name, checked }), text);
  const form = h("form", { class: "card", novalidate: true },
    h("h2", {}, "Profile"), h("p", { class: "error", hidden: true }),
    field("Name", inputs.display_name), field("Credentials (comma separated)", inputs.credentials),
    h("div", { class: "row" }, field("Licensed in (states)", inputs.license_states), field("License number", inputs.license_number)),
    licenceStatus(profile),
    field("About your practice", inputs.bio),
    h("div", { class: "row" }, field("Specialties", inputs.specialties), field("Modalities", inputs.modalities)),
    h("div", { class: "row" }, field("Populations", inputs.populations), field("Languages", inputs.languages), field("Insurance", inputs.insurance)),
    h("div", { class: "row" }, field("Fee from ($)", inputs.fee_min), field("Fee to ($)", inputs.fee_max)),
    box("sliding_scale", profile.sliding_scale, "Sliding scale"), box("telehealth", profile.telehealth, "Telehealth"), box("in_person", profile.in_person, "In person"),
    h("div", { class: "row" }, field("City", inputs.city), field("State", inputs.state), field("Postal code", inputs.postal_code)),
    h("div", { class: "row" }, field("Latitude", inputs.latitude), field("Longitude", inputs.longitude)),
    h("p", {}, h("button", { type: "submit" }, "Save profile")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const list = (v) => v.split(",").map((s) => s.trim()).filter(Boolean);
    const num = (v) => (v === "" ? null : Number(v));
    const checked = (n) => form.querySelector(`[name=${n}]`).checked;
    try {
      await api.call("PUT", "/profiles/me", {
        version: profile.version,
        display_name: inputs.display_name.value,
        credentials: list(inputs.credentials.value),
        license_states: list(inputs.license_states.value).map((s) => s.toUpperCase()),
        license_number: inputs.license_number.value || null,
        bio: inputs.bio.value,
        specialties: values(inputs.specialties), modalities: values(inputs.modalities),
        populations: values(inputs.populations), languages: values(inputs.languages), insurance: values(inputs.insurance),
        fee_min: num(inputs.fee_min.value), fee_max: num(inputs.fee_max.value),
        sliding_scale: checked("sliding_scale"), telehealth: checked("telehealth"), in_person: checked("in_person"),
        city: inputs.city.value || null, state: inputs.state.value || null, postal_code: inputs.postal_code.value || null,
        latitude: num(inputs.latitude.value), longitude: num(inputs.longitude.value),
        accepting_referrals: accepting.checked,
      });
      await profilePage();
      toast("Profile saved.");
    } catch (err) {
      if (err.code === "version_conflict") {
        await profilePage();
        toast("Your profile changed elsewhere; it is shown as it is now. Make your edit again.");
        return;
      }
      showError(form, err);
    }
  });
  render(h("h1", {}, "My profile"), capForm, form, emailSection(), await twoStepSection(), await signInsSection());
}

// ---------- find colleagues ----------

const FACETS = [["specialties", "Specialty"], ["insurance", "Insurance"], ["languages", "Language"], ["modalities", "Modality"]];

async function searchPage(params) {
  const [, mine] = await Promise.all([vocabulary(), api.call("GET", "/profiles/me")]);
  const here = mine.latitude != null && mine.longitude != null ? `${mine.latitude},${mine.longitude}` : null;
  const radius = h("select", { name: "radius_km", disabled: !here },
    [["", "Any distance"], ["10", "Within 10 km"], ["25", "Within 25 km"], ["50", "Within 50 km"], ["100", "Within 100 km"]]
      .map(([v, t]) => h("option", { value: v, selected: params.get("radius_km") === v }, t)));
  const q = h("input", { name: "q", type: "search", placeholder: "e.g. trauma, EMDR, anxiety in teens", value: params.get("q") || "", "aria-label": "Search colleagues" });
  const state = h("input", { name: "licensed_in", placeholder: "IL", maxlength: 2, value: params.get("licensed_in") || "" });
  const tele = h("input", { type: "checkbox", name: "telehealth", checked: params.get("telehealth") === "true" });
  const accepting = h("input", { type: "checkbox", name: "accepting", checked: params.get("accepting") === "true" });
  const chosen = {};
  for (const [kind] of FACETS) chosen[kind] = params.getAll(kind);
  const sidebar = h("aside", { "aria-label": "Filters" });
  const results = h("section", { "aria-live": "polite", "aria-label": "Results" });
  let page = 1;
  let searches = 0;

  async function run() {
    const query = new URLSearchParams();
    if (q.value.trim()) query.set("q", q.value.trim());
    if (state.value.trim()) query.set("licensed_in", state.value.trim().toUpperCase());
    if (tele.checked) query.set("telehealth", "true");
    if (accepting.checked) query.set("accepting", "true");
    if (here && radius.value) {
      query.set("near", here);
      query.set("radius_km", radius.value);
    }
    const singular = { specialties: "specialty", insurance: "insurance", languages: "language", modalities: "modality" };
    for (const [kind] of FACETS) for (const v of chosen[kind]) query.append(singular[kind], v);
    query.set("page", page);
    query.set("per_page", 10);
    const asked = ++searches;
    let res;
    try {
      res = await api.call("GET", `/search/clinicians?${query}`);
    } catch (err) {
      fill(results, h("p", { class: "error" }, err.message));
      return;
    }
    // A slower answer to an older query must not replace a newer one.
    if (asked !== searches) return;
    results.dataset.query = q.value.trim();
    drawFacets(res.facets);
    fill(results,
      h("p", { class: "muted", id: "total" }, `${res.total} colleague${res.total === 1 ? "" : "s"}`),
      ...res.hits.map(hitCard),
      h("p", { class: "row" },
        page > 1 ? h("button", { class: "secondary", onclick: () => { page -= 1; run(); } }, "Previous") : null,
        page * res.per_page < res.total ? h("button", { class: "secondary", onclick: () => { page += 1; run(); } }, "Next") : null));
  }

  function drawFacets(facets) {
    fill(sidebar,
      field("Licensed in", state),
      field("Distance from my practice", radius, here ? null : "Add your practice's location to your profile to use this."),
      h("label", { class: "check" }, tele, "Offers telehealth"),
      h("label", { class: "check" }, accepting, "Accepting referrals"),
      ...FACETS.map(([kind, title]) => {
        const counts = facets?.[kind] || {};
        const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]).slice(0, 8);
        if (!entries.length) return null;
        return h("fieldset", { class: "card" }, h("legend", {}, title),
          entries.map(([slug, n]) => h("label", { class: "facet" },
            h("span", { class: "check" }, h("input", { type: "checkbox", checked: chosen[kind].includes(slug), onchange: (e) => {
              chosen[kind] = e.target.checked ? [...chosen[kind], slug] : chosen[kind].filter((s) => s !== slug);
              page = 1;
              run();
            } }), label(kind, slug)), h("span", { class: "muted" }, `(${n})`))));
      }));
  }

  for (const input of [state, tele, accepting, radius]) input.addEventListener("change", () => { page = 1; run(); });
  q.addEventListener("input", debounce(() => { page = 1; run(); }, 80));
  render(h("h1", {}, "Find colleagues"), q, h("div", { class: "grid" }, sidebar, results));
  run();
}

function hitCard(hit) {
  const why = [];
  if (hit.matched_terms?.length) why.push(`matches ${hit.matched_terms.join(", ")}`);
  if (hit.insurance?.length) why.push(`takes ${hit.insurance.slice(0, 2).map((s) => label("insurance", s)).join(", ")}`);
  if (hit.distance_km != null) why.push(`${hit.distance_km.toFixed(1)} km away`);
  if (hit.telehealth) why.push("telehealth");
  return h("article", { class: "card hit" },
    h("h2", {}, h("span", { html: hit.highlights?.display_name || hit.display_name }), " ", capacityBadge(hit),
      hit.verified_states?.length ? h("span", { class: "muted" }, ` · licence verified in ${hit.verified_states.join(", ")}`) : null),
    h("p", { class: "chips" }, (hit.highlights?.specialties?.length ? hit.highlights.specialties : hit.specialties.map((s) => label("specialties", s)))
      .map((s) => h("span", { class: "chip", html: s }))),
    h("p", { class: "why" }, "Why this match: ", why.join(" · ") || "fits your filters"),
    h("p", {}, h("a", { class: "button", href: `#/refer?to=${hit.user_id}&name=${encodeURIComponent(hit.display_name)}` }, `Refer to ${hit.display_name}`)));
}

// ---------- referrals ----------

const AGE_BANDS = [["adult", "Adult"], ["young_adult", "Young adult"], ["adolescent", "Adolescent"], ["child", "Child"], ["early_childhood", "Early childhood"], ["older_adult", "Older adult"]];

async function referPage(params) {
  const tax = await vocabulary();
  const to = params.get("to");
  const mode = h("select", { name: "mode" }, [["direct", "Direct: one colleague"], ["cascade", "Cascade: one at a time, in order"], ["broadcast", "Broadcast: up to 10, first to accept"]]
    .map(([v, t]) => h("option", { value: v, selected: (to ? "direct" : "cascade") === v }, t)));
  const f = {
    age_band: h("select", { name: "age_band" }, AGE_BANDS.map(([v, t]) => h("option", { value: v }, t))),
    state: h("input", { name: "state", maxlength: 2, placeholder: "IL", required: true }),
    concerns: multi("concerns", tax.specialties, []),
    insurance: h("select", { name: "insurance" }, h("option", { value: "" }, "Any / self-pay"), options(tax.insurance)),
    language: h("select", { name: "language" }, h("option", { value: "" }, "Any"), options(tax.languages)),
    urgency: h("select", { name: "urgency" }, ["routine", "soon", "urgent"].map((u) => h("option", { value: u }, u))),
    note: h("textarea", { name: "note", placeholder: "Clinical context, without names or dates" }),
    full_name: h("input", { name: "full_name", required: true }),
    phone: h("input", { name: "phone", type: "tel" }),
    email: h("input", { name: "email", type: "email" }),
  };
  const tele = h("input", { type: "checkbox", name: "telehealth_ok", checked: true });
  const shortlist = h("div", { "aria-live": "polite" });
  let picked = to ? [to] : [];
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, to ? `Refer a client to ${params.get("name") || "a colleague"}` : "Refer a client"),
    h("p", { class: "error", hidden: true }),
    field("How to send it", mode),
    h("h2", {}, "The client, without identifiers"),
    h("div", { class: "row" }, field("Age band", f.age_band), field("State", f.state), field("Urgency", f.urgency)),
    field("Concerns", f.concerns),
    h("div", { class: "row" }, field("Insurance", f.insurance), field("Language", f.language)),
    h("label", { class: "check" }, tele, "Telehealth is fine"),
    field("Note", f.note),
    h("h2", {}, "Contact details (only the colleague who accepts will see them)"),
    h("div", { class: "row" }, field("Client's name", f.full_name), field("Phone", f.phone), field("Email", f.email)),
    to ? null : h("p", {}, h("button", { type: "button", class: "secondary", onclick: findShortlist }, "Find the best colleagues")),
    shortlist,
    h("p", {}, h("button", { type: "submit" }, "Send referral")));

  function packet() {
    return {
      age_band: f.age_band.value, state: f.state.value.trim().toUpperCase(), concerns: values(f.concerns),
      insurance: f.insurance.value || null, language: f.language.value || null, telehealth_ok: tele.checked,
      urgency: f.urgency.value, note: f.note.value,
    };
  }

  async function findShortlist() {
    try {
      const p = packet();
      const res = await api.call("POST", "/match", {
        concerns: p.concerns, age_band: p.age_band, state: p.state, insurance: p.insurance,
        language: p.language, telehealth_ok: p.telehealth_ok, limit: 10,
      });
      picked = res.candidates.map((c) => c.clinician.user_id);
      fill(shortlist, h("h2", {}, "Shortlist"), h("ol", {}, res.candidates.map((c) =>
        h("li", {}, h("label", { class: "check" }, h("input", { type: "checkbox", checked: true, onchange: (e) => {
          const id = c.clinician.user_id;
          picked = e.target.checked ? [...picked, id] : picked.filter((x) => x !== id);
        } }), `${c.clinician.display_name} — ${[...c.why, `licence verified in ${c.clinician.verified_states.join(", ")}`].join("; ")}`)))));
    } catch (err) {
      showError(form, err);
    }
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const referral = await api.call("POST", "/referrals", {
        mode: mode.value, recipients: picked, packet: packet(),
        contact: { full_name: f.full_name.value, phone: f.phone.value || null, email: f.email.value || null },
      });
      location.hash = `#/referrals/${referral.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  render(form);
}

const STATUSES = ["", "requested", "received", "accepted", "declined", "scheduled", "completed", "withdrawn", "expired"];

async function referralsPage(params) {
  const box = params.get("box") || "inbox";
  const status = params.get("status") || "";
  const query = new URLSearchParams({ box });
  if (status) query.set("status", status);
  const res = await api.call("GET", `/referrals?${query}`);
  const items = Array.isArray(res) ? res : res.items || [];
  const filter = h("select", { "aria-label": "Status", onchange: (e) => { location.hash = `#/referrals?box=${box}&status=${e.target.value}`; } },
    STATUSES.map((s) => h("option", { value: s, selected: s === status }, s || "any status")));
  render(h("h1", {}, "Referrals"),
    h("p", { class: "row" },
      h("a", { href: "#/referrals?box=inbox", "aria-current": box === "inbox" ? "page" : false }, "Inbox"),
      h("a", { href: "#/referrals?box=outbox", "aria-current": box === "outbox" ? "page" : false }, "Sent"), filter,
      h("a", { class: "button", href: "#/refer" }, "New referral")),
    items.length ? h("ul", { class: "list" }, items.map((r) => h("li", { class: "card" },
      h("a", { href: `#/referrals/${r.id}` }, `${r.concerns.map((c) => label("specialties", c)).join(", ")} — ${r.client_state}, ${r.urgency}`),
      " ", h("span", { class: "chip" }, r.status ?? `your offer: ${r.offer_state}`), r.deadline ? h("span", { class: "muted" }, ` answer by ${when(r.deadline)}`) : null)))
      : h("p", { class: "muted" }, "Nothing here yet."));
}

async function referralPage(id) {
  const me = api.me();
  const view = h("div");
  let lastVersion = "";

  async function draw() {
    const r = await api.call("GET", `/referrals/${id}`);
    const version = `${r.status}:${r.timeline.length}:${r.updated_at}`;
    if (version === lastVersion) return;
    lastVersion = version;
    const sender = r.sender_id === me?.id;
    const actions = [];
    const mine = r.offers.find((o) => o.recipient_id === me?.id);
    if (!sender && mine && ["offered", "received"].includes(mine.state)) {
      const reason = h("select", { name: "reason", "aria-label": "Reason" }, [["no_capacity", "No capacity"], ["not_a_fit", "Not a fit"], ["insurance", "Insurance"], ["location", "Location"], ["other", "Other"]]
        .map(([v, t]) => h("option", { value: v }, t)));
      actions.push(
        h("button", { onclick: () => act("accept", { onto: "slot" }) }, "Accept (take an open slot)"),
        h("button", { class: "secondary", onclick: () => act("accept", { onto: "waitlist" }) }, "Accept onto my waitlist"),
        h("span", { class: "row" }, reason, h("button", { class: "secondary", onclick: () => act("decline", { reason: reason.value }) }, "Decline")));
    }
    if (sender && !["completed", "withdrawn", "expired", "declined"].includes(r.status)) {
      actions.push(h("button", { class: "secondary", onclick: () => act("withdraw", {}) }, "Withdraw"));
    }
    let contact = null;
    if (r.accepted_by === me?.id) {
      try {
        const c = await api.call("GET", `/referrals/${id}/contact`);
        contact = h("section", { class: "card", id: "contact" }, h("h2", {}, "Client contact"), h("p", {}, c.full_name), c.phone ? h("p", {}, c.phone) : null, c.email ? h("p", {}, c.email) : null);
      } catch { /* not released */ }
    }
    fill(view,
      h("h1", {}, `Referral: ${r.packet.concerns.map((c) => label("specialties", c)).join(", ")}`),
      h("p", {}, h("span", { class: "chip", id: "status" }, r.status ?? `your offer: ${mine?.state}`), " ", r.mode, r.deadline ? ` · answer by ${when(r.deadline)}` : ""),
      h("p", { class: "muted" }, `${r.packet.age_band.replace("_", " ")}, ${r.packet.state}, ${r.packet.urgency}`), r.packet.note ? h("p", {}, r.packet.note) : null,
      actions.length ? h("p", { class: "row" }, actions) : null,
      contact,
      h("h2", {}, "Timeline"),
      h("ol", { class: "timeline", id: "timeline" }, r.timeline.map((e) => h("li", {}, `${e.from_status ? `${e.from_status} → ` : ""}${e.to_status}`, h("span", { class: "muted" }, ` ${when(e.at)}`), e.note ? ` — ${e.note}` : ""))));
  }

  async function act(action, body) {
    try {
      await api.call("POST", `/referrals/${id}/${action}`, body);
      lastVersion = "";
      await draw();
    } catch (err) {
      toast(err.message);
    }
  }

  render(view);
  await draw();
  const timer = setInterval(() => draw().catch(() => {}), 2000);
  onLeave(() => clearInterval(timer));
}

// ---------- notifications ----------

async function refreshBell() {
  if (!api.signedIn()) return;
  try {
    const res = await api.call("GET", "/notifications");
    const badge = document.getElementById("unread");
    badge.textContent = res.unread;
    badge.hidden = res.unread === 0;
  } catch { /* next time */ }
}

async function notificationsPage() {
  const res = await api.call("GET", "/notifications");
  render(h("h1", {}, "Notifications"),
    h("p", {}, h("button", { class: "secondary", onclick: async () => { await api.call("POST", "/notifications/read-all"); refreshBell(); notificationsPage(); } }, "Mark all read")),
    res.items.length ? h("ul", {}, res.items.map((n) => h("li", { class: "card" },
      n.read_at ? "" : h("strong", {}, "New: "), n.message, " ",
      n.referral_id ? h("a", { href: `#/referrals/${n.referral_id}` }, "Open") : n.group_id ? h("a", { href: `#/groups/${n.group_id}` }, "Open") : null,
      h("span", { class: "muted" }, ` ${when(n.created_at)}`)))) : h("p", { class: "muted" }, "Nothing yet."));
}

// ---------- router ----------

const routes = [
  [/^#\/signin$/, signInPage, false],
  [/^#\/signup$/, signUpPage, false],
  [/^#\/forgot-password$/, forgotPasswordPage, false],
  [/^#\/reset-password$/, resetPasswordPage, false],
  [/^#\/verify-email$/, verifyEmailPage, false],
  [/^#\/profile$/, profilePage, true],
  [/^#\/search$/, searchPage, true],
  [/^#\/refer$/, referPage, true],
  [/^#\/referrals$/, referralsPage, true],
  [/^#\/referrals\/([\w-]+)$/, (_, id) => referralPage(id), true],
  [/^#\/notifications$/, notificationsPage, true],
  [/^#\/groups$/, groupsPage, true],
  [/^#\/groups\/([\w-]+)$/, (_, id) => groupPage(id), true],
  [/^#\/sessions$/, sessionsPage, true],
];

async function route() {
  leave();
  const [path, query = ""] = (location.hash || "#/").split("?");
  const params = new URLSearchParams(query);
  document.getElementById("nav").hidden = !api.signedIn();
  verificationBanner(document.getElementById("account-notice"), path);
  for (const a of document.querySelectorAll("nav a")) a.toggleAttribute("aria-current", a.getAttribute("href") === path);
  for (const [pattern, page, needsSession] of routes) {
    const m = path.match(pattern);
    if (!m) continue;
    if (needsSession && !api.signedIn()) {
      location.hash = "#/signin";
      return;
    }
    try {
      await page(params, ...m.slice(1));
    } catch (err) {
      render(h("div", { class: "card" }, h("h1", {}, "Something went wrong"), h("p", { class: "error" }, err.message)));
    }
    return;
  }
  location.hash = api.signedIn() ? "#/search" : "#/signin";
}

async function start() {
  await api.resume();
  document.getElementById("signout").addEventListener("click", async () => {
    await api.signOut();
    location.hash = "#/signin";
  });
  for (const ev of ["click", "keydown"]) document.addEventListener(ev, api.touch, { passive: true });
  setInterval(async () => {
    if (api.signedIn() && api.idleTooLong()) {
      await api.signOut();
      toast("You were signed out after 30 minutes without activity.");
      location.hash = "#/signin";
    }
  }, 30_000);
  setInterval(refreshBell, 10_000);
  window.addEventListener("hashchange", () => { route(); refreshBell(); });
  await route();
  refreshBell();
}

start();
