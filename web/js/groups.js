// Consultation groups and their rooms: the list, invitations and requests,
// and the room itself (history as you scroll up, presence, typing, the
// privacy guard's warning, reconnects without losing or doubling messages,
// moderation for hosts, and the live-session banner).

import * as api from "./api.js";
import { h, field, showError, toast, when } from "./ui.js";
import { render, onLeave } from "./page.js";
import { sessionControls } from "./sessions.js";

export async function groupsPage() {
  const list = await api.call("GET", "/groups");
  const name = h("input", { name: "name", required: true });
  const topic = h("input", { name: "topic" });
  const listed = h("input", { type: "checkbox", name: "listed" });
  const form = h("form", { class: "card", novalidate: true }, h("h2", {}, "Start a group"),
    h("p", { class: "error", hidden: true }), field("Name", name), field("Topic", topic),
    h("label", { class: "check" }, listed, "Listed: colleagues can find it and ask to join"),
    h("p", {}, h("button", { type: "submit" }, "Create group")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const g = await api.call("POST", "/groups", { name: name.value, topic: topic.value, listed: listed.checked });
      location.hash = `#/groups/${g.id}`;
    } catch (err) {
      showError(form, err);
    }
  });
  const answer = (invite, verb) => async () => {
    try {
      await api.call("POST", `/group-invites/${invite.id}/${verb}`);
      groupsPage();
    } catch (err) {
      toast(err.message);
    }
  };
  render(h("h1", {}, "Consultation groups"),
    list.invites.length ? h("section", {}, h("h2", {}, "Invitations"), list.invites.map((i) => h("div", { class: "card" },
      `${i.from_name || "Someone"} invited you to “${i.group_name}”. `,
      i.expires_at ? h("span", { class: "muted" }, `Open until ${when(i.expires_at)}. `) : null,
      h("button", { onclick: answer(i, "accept") }, "Accept"), " ", h("button", { class: "secondary", onclick: answer(i, "decline") }, "Decline")))) : null,
    h("h2", {}, "My groups"),
    list.mine.length ? h("ul", {}, list.mine.map((g) => h("li", { class: "card" }, h("a", { href: `#/groups/${g.id}` }, g.name), ` · ${g.member_count} members · ${g.my_role}`)))
      : h("p", { class: "muted" }, "None yet."),
    list.listed.length ? h("section", {}, h("h2", {}, "Groups you can ask to join"), list.listed.map((g) => h("div", { class: "card" }, h("strong", {}, g.name), ` — ${g.topic} `,
      g.join_requested ? h("span", { class: "muted" }, "Request sent") : h("button", { class: "secondary", onclick: async () => {
        await api.call("POST", `/groups/${g.id}/join-requests`);
        await groupsPage();
        toast("Request sent to the hosts.");
      } }, "Ask to join")))) : null,
    form);
}

export async function groupPage(id) {
  const [group, members] = await Promise.all([api.call("GET", `/groups/${id}`), api.call("GET", `/groups/${id}/members`)]);
  const me = api.me();
  const moderates = ["host", "moderator"].includes(group.my_role);
  const messages = h("div", { class: "messages", id: "messages", role: "log", "aria-label": "Messages" });
  const presence = h("ul", { id: "presence", "aria-label": "In the room" });
  const typing = h("p", { class: "muted", id: "typing", "aria-live": "polite" });
  const banner = h("div", { id: "session-banner" });
  const warning = h("div", { id: "warning", "aria-live": "assertive" });
  const status = h("p", { class: "muted", id: "connection" }, "Connecting…");
  const input = h("textarea", { name: "body", "aria-label": "Message", placeholder: "Write to the group (no client identifiers)" });
  const shown = new Map(); // message id -> element
  let lastId = 0;
  let oldest = null;
  let socket = null;
  let closedByUs = false;
  let retry = 500;
  const pending = new Map(); // client_id -> body, until the server echoes it

  function messageEl(m) {
    const el = h("div", { class: `message${m.deleted ? " deleted" : ""}`, "data-id": m.id },
      h("span", { class: "who" }, m.author.name), m.deleted ? "message deleted" : m.body,
      h("span", { class: "muted" }, ` ${when(m.at)}`),
      moderates && !m.deleted ? h("button", { class: "link", "aria-label": "Delete message", onclick: () => api.call("DELETE", `/groups/${id}/messages/${m.id}`).catch((e) => toast(e.message)) }, " delete") : null);
    return el;
  }

  function add(m, atTop = false) {
    if (shown.has(m.id)) return; // never twice, whatever the path it came by
    const el = messageEl(m);
    shown.set(m.id, el);
    if (atTop) messages.prepend(el);
    else {
      messages.append(el);
      messages.scrollTop = messages.scrollHeight;
    }
    if (m.id > lastId) lastId = m.id;
    if (oldest === null || m.id < oldest) oldest = m.id;
    if (m.client_id) pending.delete(m.client_id);
  }

  async function olderPage() {
    if (oldest === 1) return;
    const q = oldest ? `?before=${oldest}&limit=30` : "?limit=30";
    const page = await api.call("GET", `/groups/${id}/messages${q}`);
    const height = messages.scrollHeight;
    for (const m of [...page.messages].reverse()) add(m, true);
    messages.scrollTop = messages.scrollHeight - height;
    if (!page.next_before) oldest = 1;
  }
  messages.addEventListener("scroll", () => { if (messages.scrollTop === 0) olderPage().catch(() => {}); });

  function drawPresence(online) {
    presence.replaceChildren(...online.map((p) => h("li", { "data-user": p.id }, p.name)));
  }

  async function connect() {
    socket = await api.openSocket(id);
    socket.addEventListener("open", () => {
      retry = 500;
      status.textContent = "Connected";
      // After a drop: everything after the last message we have, exactly once.
      socket.send(JSON.stringify({ type: "resume", after_id: lastId }));
      for (const [client_id, body] of pending) socket.send(JSON.stringify({ type: "say", client_id, body }));
    });
    socket.addEventListener("message", (event) => {
      const f = JSON.parse(event.data);
      switch (f.type) {
        case "message": add(f); break;
        case "deleted": {
          const el = shown.get(f.id);
          if (el) el.replaceWith(messageEl({ id: f.id, author: { name: el.querySelector(".who").textContent }, deleted: true, at: null }));
          break;
        }
        case "presence": drawPresence(f.online); break;
        case "presence_change": {
          const current = [...presence.children].map((li) => ({ id: li.dataset.user, name: li.textContent })).filter((p) => p.id !== f.user.id);
          drawPresence(f.online ? [...current, f.user] : current);
          break;
        }
        case "typing":
          typing.textContent = `${f.user.name} is typing…`;
          clearTimeout(typing.timer);
          typing.timer = setTimeout(() => { typing.textContent = ""; }, 3000);
          break;
        case "warning": {
          const body = pending.get(f.client_id) || "";
          pending.delete(f.client_id);
          warning.replaceChildren(h("div", { class: "warning" },
            h("p", {}, "This message may identify a client: ", f.spans.map((s) => `“${body.slice(s.start, s.end)}” (${s.kind.replaceAll("_", " ")})`).join(", "), ". It was not sent."),
            h("button", { onclick: () => { send(body, true, f.client_id); warning.replaceChildren(); } }, "Send anyway"), " ",
            h("button", { class: "secondary", onclick: () => { input.value = body; warning.replaceChildren(); input.focus(); } }, "Edit it")));
          break;
        }
        case "session": banner.replaceChildren(f.state === "live" ? h("div", { class: "banner" }, `Live session: ${f.title}${f.locked ? " (room locked)" : ""}`) : ""); break;
        case "membership": if (f.muted_until) toast(`A moderator muted you until ${when(f.muted_until)}.`); break;
        case "removed": toast("You were removed from this group."); closedByUs = true; location.hash = "#/groups"; break;
        case "error": toast(f.message); if (f.client_id) pending.delete(f.client_id); break;
        default: break;
      }
    });
    socket.addEventListener("close", () => {
      if (closedByUs) return;
      status.textContent = "Reconnecting…";
      setTimeout(() => connect().catch(() => {}), retry);
      retry = Math.min(retry * 2, 10_000);
    });
  }

  function send(body, confirm = false, client_id = crypto.randomUUID()) {
    pending.set(client_id, body);
    if (socket?.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "say", client_id, body, confirm }));
  }

  const say = h("form", { class: "row" }, input, h("button", { type: "submit" }, "Send"));
  say.addEventListener("submit", (e) => {
    e.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    send(body);
    input.value = "";
  });
  let lastTyping = 0;
  input.addEventListener("input", () => {
    if (Date.now() - lastTyping > 2000 && socket?.readyState === WebSocket.OPEN) {
      lastTyping = Date.now();
      socket.send(JSON.stringify({ type: "typing" }));
    }
  });
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); say.requestSubmit(); } });

  const invite = h("input", { name: "email", type: "email", "aria-label": "Colleague's email" });
  const inviteForm = h("form", { class: "row" }, h("p", { class: "error", hidden: true }), invite, h("button", { type: "submit", class: "secondary" }, "Invite"));
  inviteForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.call("POST", `/groups/${id}/invites`, { email: invite.value });
      toast("Invitation sent.");
      invite.value = "";
      await drawPending();
    } catch (err) {
      showError(inviteForm, err);
    }
  });
  // Hosts see the invitations still open and may withdraw them.
  const openInvites = h("ul", { class: "pending-invites" });
  async function drawPending() {
    if (group.my_role !== "host") return;
    const open = (await api.call("GET", `/groups/${id}/invites`)).filter((i) => i.kind === "invite");
    openInvites.replaceChildren(...open.map((i) => h("li", {}, `${i.email} `,
      h("span", { class: "muted" }, `until ${when(i.expires_at)} `),
      h("button", { class: "link", onclick: () => api.call("DELETE", `/groups/${id}/invites/${i.id}`)
        .then(() => { toast(`The invitation to ${i.email} is withdrawn.`); return drawPending(); }, (e) => toast(e.message)) }, "withdraw"))));
  }
  await drawPending();
  const memberList = h("ul", {}, members.map((m) => h("li", {}, `${m.display_name} (${m.role})`,
    moderates && m.user_id !== me?.id && m.role === "member" ? h("span", {}, " ",
      h("button", { class: "link", onclick: () => api.call("POST", `/groups/${id}/members/${m.user_id}/mute`, { minutes: 15 }).then(() => toast(`${m.display_name} is muted for 15 minutes.`), (e) => toast(e.message)) }, "mute"), " ",
      h("button", { class: "link", onclick: () => api.call("DELETE", `/groups/${id}/members/${m.user_id}`).then(() => groupPage(id), (e) => toast(e.message)) }, "remove")) : null)));

  render(h("h1", {}, group.name), h("p", { class: "muted" }, group.topic), banner, status,
    h("div", { class: "room" },
      h("section", { "aria-label": "Room" }, messages, typing, warning, say),
      h("aside", {}, h("h2", {}, "Here now"), presence, h("h2", {}, "Members"), memberList,
        moderates ? h("div", {}, h("h2", {}, "Invite a colleague"), inviteForm, openInvites) : null)),
    await sessionControls(id, group));
  await olderPage();
  await connect();
  onLeave(() => { closedByUs = true; socket?.close(); });
}
