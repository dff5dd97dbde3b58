// Two-step sign-in on my profile: turn it on (password, then a QR code for
// the authenticator app and a first code), see the ten recovery codes once,
// make new ones, or turn it off (not for administrators and supervisors).

import * as api from "./api.js";
import { h, fill, field, showError, toast } from "./ui.js";

function recoveryList(codes) {
  return h("div", { class: "recovery" },
    h("p", {}, h("strong", {}, "Your recovery codes. "), "Each works once, in place of a code, if you lose your device. Keep them somewhere safe: they are shown only now."),
    h("ol", { class: "codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))));
}

export async function twoStepSection() {
  const section = h("section", { class: "card", "aria-labelledby": "two-step-title" });
  const password = () => h("input", { name: "current_password", type: "password", autocomplete: "current-password", required: true });
  const codeInput = () => h("input", { name: "code", autocomplete: "one-time-code", inputmode: "numeric", required: true });

  async function draw(shown = null) {
    const status = await api.call("GET", "/me/second-factor");
    const title = h("h2", { id: "two-step-title" }, "Two-step sign-in");
    if (!status.enabled) {
      const pw = password();
      const form = h("form", { novalidate: true },
        h("p", { class: "error", hidden: true }),
        field("Current password", pw),
        h("p", {}, h("button", { type: "submit", class: "secondary" }, "Turn on two-step sign-in")));
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          enrol(await api.call("POST", "/me/second-factor", { current_password: pw.value }));
        } catch (err) {
          showError(form, err);
        }
      });
      fill(section, title,
        status.required ? h("p", { class: "banner" }, "Administrators and supervisors must sign in with a second factor: until you turn it on, your administrator and supervisor powers wait.") : null,
        h("p", { class: "muted" }, "After your password, Kith will ask for a six-digit code from an authenticator app on your phone (any app that reads QR codes for one-time codes)."),
        form);
      return;
    }
    const code = codeInput();
    const renew = h("form", { novalidate: true },
      h("p", { class: "error", hidden: true }),
      field("Code from your app", code),
      h("p", {}, h("button", { type: "submit", class: "secondary" }, "Make new recovery codes")));
    renew.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const res = await api.call("POST", "/me/second-factor/recovery-codes", { code: code.value });
        await draw(res.recovery_codes);
      } catch (err) {
        showError(renew, err);
      }
    });
    let off = null;
    if (!status.required) {
      const pw = password();
      off = h("form", { novalidate: true },
        h("p", { class: "error", hidden: true }),
        field("Current password", pw),
        h("p", {}, h("button", { type: "submit", class: "link" }, "Turn off two-step sign-in")));
      off.addEventListener("submit", async (e) => {
        e.preventDefault();
        try {
          await api.call("POST", "/me/second-factor/disable", { current_password: pw.value });
          toast("Two-step sign-in is off.");
          await draw();
        } catch (err) {
          showError(off, err);
        }
      });
    }
    fill(section, title,
      h("p", {}, h("span", { class: "cap cap-open" }, "on"), ` Signing in asks for a code after your password. Recovery codes left: ${status.recovery_codes_left} of 10.`),
      shown ? recoveryList(shown) : null,
      renew, off);
  }

  function enrol(enrolment) {
    const code = codeInput();
    const form = h("form", { novalidate: true },
      h("p", { class: "error", hidden: true }),
      field("The six-digit code your app now shows", code),
      h("p", {}, h("button", { type: "submit" }, "Confirm and turn on")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const res = await api.call("POST", "/me/second-factor/confirm", { code: code.value });
        toast("Two-step sign-in is on. Your other sign-ins were ended.");
        await draw(res.recovery_codes);
      } catch (err) {
        showError(form, err);
      }
    });
    fill(section, h("h2", { id: "two-step-title" }, "Two-step sign-in"),
      h("p", {}, "Scan this with your authenticator app:"),
      h("img", { class: "qr", alt: "QR code of your Kith sign-in key", width: 220, height: 220, src: `data:image/svg+xml;base64,${btoa(enrolment.qr_svg)}` }),
      h("p", { class: "muted" }, "Cannot scan? Enter this key instead: ", h("code", { class: "key" }, enrolment.secret.match(/.{1,4}/g).join(" "))),
      form);
    code.focus();
  }

  await draw();
  return section;
}
