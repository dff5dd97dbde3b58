// Supervised sessions: upcoming ones, host controls inside a group, and my
// supervision hours with the CSV download.

import * as api from "./api.js";
import { h, field, showError, toast } from "./ui.js";
import { render } from "./page.js";

const KIND = { group_supervision: "Group supervision", peer_consultation: "Peer consultation" };

function sessionLine(s, controls) {
  return h("li", { class: "card", "data-session": s.id },
    h("strong", {}, s.title), ` · ${KIND[s.kind]} · ${s.starts_at_local.replace("T", " ").slice(0, 16)} (${s.time_zone}) · ${s.planned_minutes} min · `,
    h("span", { class: "chip" }, s.status), controls ? h("span", { class: "row" }, controls) : null);
}

/** The sessions part of a group's page: the schedule form and the host's buttons. */
export async function sessionControls(groupId, group) {
  const me = api.me();
  const upcoming = await api.call("GET", `/groups/${groupId}/sessions`);
  const past = await api.call("GET", `/groups/${groupId}/sessions?past=true`);
  const section = h("section", { "aria-label": "Sessions" }, h("h2", {}, "Sessions"));
  const act = (s, action) => async () => {
    try {
      await api.call("POST", `/sessions/${s.id}/${action}`);
      toast(`Session ${action === "sign-off" ? "signed off" : action + "ed"}.`);
      location.reload();
    } catch (err) {
      toast(err.message);
    }
  };
  const hostButtons = (s) => {
    if (s.host.id !== me?.id) return null;
    if (s.status === "scheduled") return [h("button", { onclick: act(s, "start") }, "Start"), h("button", { class: "secondary", onclick: act(s, "cancel") }, "Cancel")];
    if (s.status === "live") return [h("button", { onclick: act(s, "end") }, "End"), h("button", { class: "secondary", onclick: act(s, s.locked ? "unlock" : "lock") }, s.locked ? "Unlock room" : "Lock room")];
    if (s.status === "ended" && !s.signed_at) return [h("button", { onclick: act(s, "sign-off") }, "Sign off attendance")];
    return null;
  };
  section.append(h("ul", {}, [...upcoming, ...past.slice(0, 5)].map((s) => sessionLine(s, hostButtons(s)))));
  if (me?.role === "supervisor" || me?.role === "admin" || group.my_role === "host") {
    const title = h("input", { name: "title", required: true });
    const starts = h("input", { name: "starts_at", type: "datetime-local", required: true });
    const minutes = h("input", { name: "planned_minutes", type: "number", min: 1, max: 480, value: 60 });
    const kind = h("select", { name: "kind" }, Object.entries(KIND).map(([v, t]) => h("option", { value: v }, t)));
    const repeat = h("input", { name: "repeat_weeks", type: "number", min: 0, max: 52, value: 0 });
    const form = h("form", { class: "card", novalidate: true }, h("h3", {}, "Schedule a session"), h("p", { class: "error", hidden: true }),
      field("Title", title), h("div", { class: "row" }, field("Starts (your time zone)", starts), field("Minutes", minutes), field("Kind", kind), field("Repeat weekly for (weeks)", repeat)),
      h("p", {}, h("button", { type: "submit" }, "Schedule")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api.call("POST", `/groups/${groupId}/sessions`, {
          title: title.value, starts_at: starts.value, planned_minutes: Number(minutes.value), kind: kind.value, repeat_weeks: Number(repeat.value),
        });
        toast("Session scheduled.");
        location.reload();
      } catch (err) {
        showError(form, err);
      }
    });
    section.append(form);
  }
  return section;
}

export async function sessionsPage() {
  const [upcoming, ledger] = await Promise.all([api.call("GET", "/me/sessions"), api.call("GET", "/me/supervision-hours")]);
  const download = h("button", { class: "secondary", id: "csv", onclick: async () => {
    try {
      const blob = await api.download("/me/supervision-hours.csv");
      const a = h("a", { href: URL.createObjectURL(blob), download: "supervision-hours.csv" });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) {
      toast(err.message);
    }
  } }, "Download CSV");
  const totals = (rows) => h("ul", {}, rows.map((t) => h("li", {}, `${KIND[t.key] || t.key}: ${t.hours} h (${t.sessions} ${t.sessions === 1 ? "session" : "sessions"})`)));
  render(h("h1", {}, "Sessions"),
    h("h2", {}, "Upcoming"),
    upcoming.length ? h("ul", {}, upcoming.map((s) => sessionLine(s, h("a", { href: `#/groups/${s.group_id}` }, s.group_name)))) : h("p", { class: "muted" }, "No sessions coming up."),
    h("h2", {}, "My supervision hours"),
    h("p", { id: "total-hours" }, `${ledger.total_hours} hours in all (${ledger.time_zone})`, " ", download),
    h("div", { class: "row" }, h("div", {}, h("h3", {}, "By kind"), totals(ledger.by_kind)), h("div", {}, h("h3", {}, "By supervisor"), totals(ledger.by_supervisor)), h("div", {}, h("h3", {}, "By month"), totals(ledger.by_month))),
    ledger.lines.length ? h("div", { class: "table-scroll" }, h("table", { id: "ledger" }, h("thead", {}, h("tr", {}, ["Date", "Group", "Session", "Kind", "Minutes", "Supervisor", "Signed", "Your answer"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ledger.lines.map((l) => h("tr", { "data-session": l.session_id },
        [l.date, l.group, l.session, KIND[l.kind], l.adjusted_reason ? `${l.minutes} (corrected: ${l.adjusted_reason})` : l.minutes,
          `${l.supervisor} ${l.supervisor_license || ""}`, l.signed_at_local.slice(0, 16).replace("T", " ")].map((c) => h("td", {}, c)),
        h("td", {}, answerCell(l)))))))
      : h("p", { class: "muted" }, "No signed sessions yet."));
}

// Each signed line is the supervisee's to confirm, or to dispute with a reason.
function answerCell(line) {
  if (line.answer === "confirmed") return h("span", { class: "cap cap-open" }, "Confirmed");
  if (line.answer === "disputed") return h("span", {}, h("span", { class: "cap cap-short" }, "Disputed"), ` ${line.answer_note || ""}`);
  const why = h("input", { name: "dispute_note", "aria-label": "Why the line is wrong", placeholder: "What is wrong?" });
  const send = async (action, body) => {
    try {
      await api.call("POST", `/me/supervision-hours/${line.session_id}/${action}`, body);
      await sessionsPage();
      toast(action === "confirm" ? "Line confirmed." : "Line disputed; every export shows it.");
    } catch (err) {
      toast(err.message);
    }
  };
  return h("span", { class: "row" },
    h("button", { class: "secondary", onclick: () => send("confirm", {}) }, "Confirm"),
    why, h("button", { class: "secondary", onclick: () => send("dispute", { note: why.value }) }, "Dispute"));
}
