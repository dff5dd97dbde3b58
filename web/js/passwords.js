// A forgotten password: ask for a link by email, then choose a new password
// from the link. Neither page needs a sign-in.

import * as api from "./api.js";
import { h, field, showError, toast } from "./ui.js";
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
