// Getting in and staying in control of an account: a forgotten password
// (ask for a link by email, then choose a new password from the link; neither
// page needs a sign-in), proving one's email address (the banner until then,
// the page the emailed link opens, moving to a new address), and the list of
// one's sign-ins, each of which can be ended.

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

// Until the address is proved: what waits on it, and a new link on request.
export function verificationBanner(el, path) {
  const account = api.me();
  const waiting = api.signedIn() && account && !account.email_verified_at && path !== "#/verify-email";
  el.hidden = !waiting;
  if (!waiting) return el.replaceChildren();
  const resend = h("button", { type: "button", class: "link", onclick: async () => {
    try {
      toast((await api.call("POST", "/me/email-verification")).message);
    } catch (err) {
      toast(err.message);
    }
  } }, "Send a new link");
  el.replaceChildren(h("p", {},
    h("strong", {}, "Confirm your email address. "),
    `We sent a link to ${account.email}. Until you open it, colleagues cannot find you, and you cannot send or accept referrals or join groups. `,
    resend));
}

// The page the emailed link opens; it needs no sign-in (the link is the proof).
export async function verifyEmailPage(params) {
  const token = params.get("token") || "";
  const onward = api.signedIn() ? h("a", { class: "button", href: "#/profile" }, "Go to my profile") : h("a", { class: "button", href: "#/signin" }, "Sign in");
  try {
    const account = await api.call("POST", "/auth/verify-email", { token });
    await api.reloadAccount();
    render(h("div", { class: "card" },
      h("h1", {}, "Your email address is confirmed"),
      h("p", {}, `Kith now knows ${account.email} is yours. Colleagues can find you, and you can refer and join groups.`),
      h("p", {}, onward)));
  } catch (err) {
    render(h("div", { class: "card" },
      h("h1", {}, "This link does not work"),
      h("p", { class: "error" }, err.message),
      h("p", {}, onward)));
  }
}

// My email address: whether it is confirmed, and moving to a new one.
export function emailSection() {
  const account = api.me();
  const email = h("input", { name: "new_email", type: "email", autocomplete: "email", required: true });
  const password = h("input", { name: "current_password", type: "password", autocomplete: "current-password", required: true });
  const done = h("p", { class: "banner", role: "status", hidden: true });
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "email-title" },
    h("h2", { id: "email-title" }, "Email address"),
    h("p", {}, account.email, " ", account.email_verified_at
      ? h("span", { class: "cap cap-open" }, "confirmed")
      : h("span", { class: "cap cap-short" }, "not confirmed yet")),
    h("p", { class: "muted" }, "To move to a new address, give it and your password. We send a link there; your address changes once you open it, and we tell this one."),
    h("p", { class: "error", hidden: true }),
    h("div", { class: "row" }, field("New email address", email), field("Current password", password)),
    h("p", {}, h("button", { type: "submit", class: "secondary" }, "Change email address")),
    done);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const answer = await api.call("PUT", "/me/email", { new_email: email.value, current_password: password.value });
      form.querySelector(".error").hidden = true;
      password.value = "";
      done.textContent = answer.message;
      done.hidden = false;
    } catch (err) {
      showError(form, err);
    }
  });
  return form;
}
