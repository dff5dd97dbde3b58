// Getting in and staying in control of an account: a forgotten password
// (ask for a link by email, then choose a new password from the link; neither
// page needs a sign-in), and the list of one's sign-ins, each of which can be ended.

import * as api from "./api.js";
import { h, field, showError, toast, when } from "./ui.js";
import { render } from "./page.js";

export function forgotPasswordPage() {
  const email = h("input", { name: "email", type: "email", autocomplete: "username", required: true });
  const done = h("p", { class: "banner", role: "status", hidden: true });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, "Forgot your password?"),
    h("p", { class: "muted" }, "Give the email you sign in with. We will send a link to choose a new password; it works once, for 30 minutes."),
    h("p", { class: "error", hidden: true }),
    field("Email", email),
    h("p", {}, h("button", { type: "submit" }, "Email me a link")),
    done,
    h("p", { class: "muted" }, h("a", { href: "#/signin" }, "Back to sign in")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const answer = await api.call("POST", "/auth/password-reset", { email: email.value });
      form.querySelector(".error").hidden = true;
      done.textContent = answer.message;
      done.hidden = false;
    } catch (err) {
      showError(form, err);
    }
  });
  render(form);
}

export function resetPasswordPage(params) {
  const token = params.get("token") || "";
  const password = h("input", { name: "new_password", type: "password", autocomplete: "new-password", required: true });
  const form = h("form", { class: "card", novalidate: true },
    h("h1", {}, "Choose a new password"),
    h("p", { class: "error", hidden: true }),
    field("New password", password, "At least 12 characters; a few unrelated words work well. Every sign-in of your account will end."),
    h("p", {}, h("button", { type: "submit" }, "Set password")),
    h("p", { class: "muted" }, "Link not working? ", h("a", { href: "#/forgot-password" }, "Ask for a new one")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.call("POST", "/auth/password-reset/confirm", { token, new_password: password.value });
      api.forget();
      toast("Your password is changed. Sign in with it.");
      location.hash = "#/signin";
    } catch (err) {
      showError(form, err);
    }
  });
  render(form);
}

// My sign-ins, each with a way to end it (shown on my profile page).
export async function signInsSection() {
  const list = h("ul", { class: "sign-ins", "aria-live": "polite" });
  const section = h("section", { class: "card", "aria-labelledby": "sign-ins-title" },
    h("h2", { id: "sign-ins-title" }, "Where you are signed in"), list);
  async function draw() {
    const signIns = await api.call("GET", "/me/sign-ins");
    list.replaceChildren(...signIns.map((s) => h("li", { class: "row" },
      h("span", {}, h("strong", {}, s.browser), s.current ? " (this browser)" : "",
        h("span", { class: "muted" }, ` · from ${s.ip || "an unknown address"} · signed in ${when(s.started_at)} · last used ${when(s.last_used_at)}`)),
      s.current ? null : h("button", { class: "secondary", onclick: async () => {
        try {
          await api.call("DELETE", `/me/sign-ins/${s.id}`);
          toast(`Signed out ${s.browser}.`);
          await draw();
        } catch (err) {
          toast(err.message);
        }
      } }, "Sign out there"))));
  }
  await draw();
  return section;
}
