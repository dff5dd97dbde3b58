// End-to-end story of Kith's web client in real headless Chromium against a
// real server on a real PostgreSQL database of its own. Screenshots of the
// key screens go to test-output/web/. Run by scripts/test; needs
// DATABASE_URL (an account that may create databases) and target/debug/kith.

import { spawn, execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const out = join(root, "test-output", "web");
const kith = join(root, "target", "debug", "kith");
const port = 18300 + Math.floor(Math.random() * 500);
const base = `http://127.0.0.1:${port}`;
const password = "lantern orbit cobalt rain";
const adminUrl = process.env.DATABASE_URL || "postgres://kith:kith@127.0.0.1:5432/kith";
const dbName = `kith_web_${process.pid}`;
const dbUrl = adminUrl.replace(/\/[^/]*$/, `/${dbName}`);

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const psql = (sql) => execFileSync("psql", [adminUrl, "-qc", sql], { stdio: "pipe" });
const query = (sql) => execFileSync("psql", [dbUrl, "-Atc", sql], { encoding: "utf8" });
psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
psql(`CREATE DATABASE ${dbName}`);
// The server runs as the application role (it may only add to the audit
// log); the owner migrates.
psql(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kith_app') THEN
  CREATE ROLE kith_app LOGIN PASSWORD 'kith_app'; END IF; END $$; GRANT kith_app TO current_user;`);
const appUrl = dbUrl.replace(/:\/\/[^@/]*@/, "://kith_app:kith_app@");
const env = {
  ...process.env, DATABASE_URL: appUrl, KITH_MIGRATION_URL: dbUrl, KITH_ADDR: `127.0.0.1:${port}`, KITH_PUBLIC_URL: base,
  KITH_ALLOWED_ORIGINS: base, KITH_DATA_DIR: mkdtempSync(join(tmpdir(), "kith-web-")), KITH_WEB_DIR: join(root, "web"), KITH_LOG: "info",
};
// Everything the server logs, searched at the end for the clients' identifiers.
const serverLog = join(out, "server.log");
// The web client's stories run on the embedded engine, as a local run does
// (CI may export MEILI_URL for the search contract suite; it is not for this server).
delete env.MEILI_URL;
delete env.MEILI_MASTER_KEY;
execFileSync(kith, ["migrate"], { env, stdio: "pipe" });
let server;
async function startServer() {
  const log = openSync(serverLog, "a");
  server = spawn(kith, ["serve"], { env, stdio: ["ignore", log, log] });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/ready`)).ok) break;
    } catch { /* not yet */ }
    if (i > 300) throw new Error("the server did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
}
async function stopServer() {
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGKILL");
  await exited;
}
await startServer();

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
let failed = false;
let step = 0;
const results = [];

async function shot(page, name) {
  step += 1;
  await page.screenshot({ path: join(out, `${String(step).padStart(2, "0")}-${name}.png`), fullPage: true });
  // What a person reads never shows a missing value as a word.
  const shown = await page.evaluate(() => document.body.innerText);
  const leak = shown.match(/\b(null|undefined|NaN)\b/);
  if (leak) throw new Error(`"${leak[0]}" is shown on the page at ${name}`);
}

async function test(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    failed = true;
    results.push(`FAIL ${name}: ${err.stack || err}`);
  }
}

// Every address a browser asked for.
const visited = [];

async function person(name) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.on("request", (r) => visited.push(r.url()));
  page.on("websocket", (ws) => visited.push(ws.url()));
  page.on("pageerror", (e) => results.push(`page error (${name}): ${e.message}`));
  return { name, email: `${name.toLowerCase()}@clinic.example`, context, page };
}

// What an authenticator app shows for a base32 key (RFC 6238: SHA-1, 6 digits, 30 s).
function authenticatorCode(key) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  const bits = [...key.replace(/[\s=]/g, "").toUpperCase()].map((c) => alphabet.indexOf(c).toString(2).padStart(5, "0")).join("");
  const bytes = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(Date.now() / 30000)));
  const mac = createHmac("sha1", bytes).update(counter).digest();
  const offset = mac[19] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, "0");
}

// The newest link of this kind in the mail that reached `address`.
async function linkInMail(address, subject, route) {
  let mails = [];
  for (let i = 0; i < 100 && !mails.length; i++) {
    mails = mailTo(address, subject);
    if (!mails.length) await new Promise((r) => setTimeout(r, 50));
  }
  const link = mails.at(-1)?.match(new RegExp(`http\\S+#/${route}\\?token=[\\w-]+`))?.[0];
  assert.ok(link, `the mail "${subject}" to ${address} carries a link`);
  return link;
}

// Opens the verification link from the mail, as its owner would.
async function confirmEmail(p) {
  await p.page.goto(await linkInMail(p.email, "Confirm your email address", "verify-email"));
  await p.page.getByRole("heading", { name: "Your email address is confirmed" }).waitFor();
}

async function signUp(p) {
  await p.page.goto(`${base}/#/signup`);
  await p.page.getByLabel("Your name, as colleagues will see it").fill(p.name);
  await p.page.getByLabel("Email").fill(p.email);
  await p.page.getByLabel("Password").fill(password);
  await p.page.getByRole("button", { name: "Create account" }).click();
  await p.page.getByRole("heading", { name: "My profile" }).waitFor();
  await confirmEmail(p);
  await p.page.getByRole("link", { name: "Go to my profile" }).click();
  await p.page.getByRole("heading", { name: "My profile" }).waitFor();
}

// An administrator (made once, from the command line) verifies a colleague's
// licence in every state the profile claims.
let registrar = null;
async function verifyLicence(name) {
  const json = { "content-type": "application/json" };
  if (!registrar) {
    await fetch(`${base}/api/v1/auth/register`, { method: "POST", headers: json,
      body: JSON.stringify({ email: "root@clinic.example", password, display_name: "Root" }) });
    execFileSync(kith, ["set-role", "--email", "root@clinic.example", "--role", "admin"], { env, stdio: "pipe" });
    registrar = (await (await fetch(`${base}/api/v1/auth/login`, { method: "POST", headers: json,
      body: JSON.stringify({ email: "root@clinic.example", password }) })).json()).access_token;
    // Administrators use their powers after a second factor.
    const headers = { ...json, authorization: `Bearer ${registrar}` };
    const enrolment = await (await fetch(`${base}/api/v1/me/second-factor`, { method: "POST", headers,
      body: JSON.stringify({ current_password: password }) })).json();
    const confirmed = await fetch(`${base}/api/v1/me/second-factor/confirm`, { method: "POST", headers,
      body: JSON.stringify({ code: authenticatorCode(enrolment.secret) }) });
    assert.equal(confirmed.status, 200, `second factor: ${await confirmed.text()}`);
  }
  const auth = { authorization: `Bearer ${registrar}` };
  const id = query(`SELECT id FROM users WHERE display_name = '${name}'`).trim();
  const verified = await fetch(`${base}/api/v1/admin/users/${id}/verification`, { method: "PUT",
    headers: { ...json, ...auth }, body: JSON.stringify({ verified: true }) });
  assert.equal(verified.status, 200, `verification: ${await verified.text()}`);
}

const ana = await person("Ana");
// Ana's authenticator key, once she turns on two-step sign-in.
let anaKey = null;
const ben = await person("Ben");
let referralUrl;

await test("two clinicians sign up; a weak password is explained next to its field; the session survives a reload", async () => {
  await ana.page.goto(`${base}/`);
  await ana.page.getByRole("heading", { name: "Sign in" }).waitFor();
  await shot(ana.page, "sign-in");
  await ana.page.goto(`${base}/#/signup`);
  await ana.page.getByLabel("Your name, as colleagues will see it").fill("Ana");
  await ana.page.getByLabel("Email").fill(ana.email);
  await ana.page.getByLabel("Password").fill("password123");
  await ana.page.getByRole("button", { name: "Create account" }).click();
  const error = ana.page.locator(".field-error:not([hidden])");
  await error.waitFor();
  assert.match(await error.textContent(), /12 characters|password/i);
  await shot(ana.page, "sign-up-weak-password");
  await ana.page.getByLabel("Password").fill(password);
  await ana.page.getByRole("button", { name: "Create account" }).click();
  await ana.page.getByRole("heading", { name: "My profile" }).waitFor();
  await ana.page.reload();
  await ana.page.getByRole("heading", { name: "My profile" }).waitFor();
  // Until she opens the emailed link, a banner says what waits on it.
  const banner = ana.page.locator("#account-notice:not([hidden])");
  await banner.filter({ hasText: "Confirm your email address" }).waitFor();
  await ana.page.getByRole("button", { name: "Send a new link" }).click();
  await ana.page.getByText("We have emailed a new link").waitFor();
  await ana.page.setViewportSize({ width: 1280, height: 800 });
  await shot(ana.page, "unverified-banner");
  await ana.page.setViewportSize({ width: 390, height: 844 });
  await shot(ana.page, "unverified-banner-phone");
  await confirmEmail(ana);
  await shot(ana.page, "email-confirmed-phone");
  await ana.page.setViewportSize({ width: 1100, height: 900 });
  await ana.page.getByRole("link", { name: "Go to my profile" }).click();
  await ana.page.getByRole("heading", { name: "My profile" }).waitFor();
  assert.equal(await ana.page.locator("#account-notice").isHidden(), true);
  await ana.page.getByText("confirmed", { exact: true }).waitFor();
  await signUp(ben);
});

await test("Ben fills in his profile and capacity", async () => {
  const page = ben.page;
  await page.getByLabel("Licensed in (states)").fill("IL");
  await page.locator("select[name=specialties]").selectOption(["trauma-ptsd", "anxiety"]);
  await page.locator("select[name=populations]").selectOption(["adults"]);
  await page.getByLabel("Telehealth").check();
  await page.getByLabel("City", { exact: true }).fill("Chicago");
  await page.getByLabel("State", { exact: true }).fill("IL");
  await page.getByRole("button", { name: "Save profile" }).click();
  await page.getByText("Profile saved.").waitFor();
  await page.getByLabel("Open slots").fill("2");
  await page.getByLabel("Accepting referrals").check();
  await page.getByRole("button", { name: "Update capacity" }).click();
  await page.getByText("Capacity saved.").waitFor();
  await page.locator(".capacity .cap-open", { hasText: "Open now" }).waitFor();
  await page.locator("#freshness", { hasText: "2 open slots, confirmed recently" }).waitFor();
  await page.locator(".licence-status", { hasText: "Not yet verified: IL" }).waitFor();
  // An administrator checks his licence (through the API); only verified
  // states count for referrals.
  await verifyLicence("Ben");
  await page.reload();
  await page.locator(".licence-status", { hasText: "Verified in IL" }).waitFor();
  await shot(page, "profile-capacity");
});

await test("Ana finds Ben by a misspelled specialty and refers a client", async () => {
  const page = ana.page;
  await page.goto(`${base}/#/search`);
  await page.getByLabel("Search colleagues").fill("traumma");
  const card = page.locator("article.hit", { hasText: "Ben" });
  for (let i = 0; i < 40 && !(await card.count()); i++) {
    await page.waitForTimeout(250);
    await page.getByLabel("Search colleagues").fill(i % 2 ? "traumma" : "traumma ");
  }
  await card.waitFor();
  assert.match(await card.textContent(), /Open now/);
  assert.match(await card.textContent(), /Why this match/);
  await shot(page, "search-misspelled");
  await card.getByRole("link", { name: "Refer to Ben" }).click();
  await page.getByRole("heading", { name: /Refer a client to Ben/ }).waitFor();
  await page.getByLabel("State", { exact: true }).fill("IL");
  await page.locator("select[name=concerns]").selectOption(["trauma-ptsd"]);
  await page.getByLabel("Client's name").fill("Jordan Example");
  await page.getByLabel("Phone").fill("555-201-3344");
  await shot(page, "refer-form");
  await page.getByRole("button", { name: "Send referral" }).click();
  await page.locator("#status", { hasText: "requested" }).waitFor();
  referralUrl = page.url();
  await shot(page, "referral-sent");
});

await test("Ben accepts from his inbox and sees the contact; Ana's page updates by itself", async () => {
  const page = ben.page;
  await page.goto(`${base}/#/referrals?box=inbox`);
  await page.locator("ul.list a").first().click();
  await page.getByRole("button", { name: "Accept (take an open slot)" }).waitFor();
  assert.equal(await page.locator("#contact").count(), 0, "no contact before accepting");
  await page.getByRole("button", { name: "Accept (take an open slot)" }).click();
  await page.locator("#contact", { hasText: "Jordan Example" }).waitFor();
  await shot(page, "accepted-contact");
  // Ana did not reload.
  assert.equal(ana.page.url(), referralUrl);
  await ana.page.locator("#status", { hasText: "accepted" }).waitFor({ timeout: 10000 });
  await ana.page.locator("#timeline li", { hasText: "accepted" }).waitFor();
  assert.equal(await ana.page.locator("#contact").count(), 0, "the sender never sees the contact");
  await shot(ana.page, "timeline-updated");
  const unread = ana.page.locator("#unread:not([hidden])");
  await unread.waitFor({ timeout: 15000 });
});

let groupUrl;
await test("both talk in a group room; the privacy guard warns and 'send anyway' sends", async () => {
  const page = ana.page;
  await page.goto(`${base}/#/groups`);
  await page.getByLabel("Name").fill("Trauma consultation");
  await page.getByLabel("Topic").fill("Hard cases");
  await page.getByRole("button", { name: "Create group" }).click();
  await page.getByRole("heading", { name: "Trauma consultation" }).waitFor();
  groupUrl = page.url();
  await page.getByLabel("Colleague's email").fill(ben.email);
  await page.getByRole("button", { name: "Invite" }).click();
  await page.getByText("Invitation sent.").waitFor();
  // The host sees it open, and withdraws a mistaken one.
  await page.locator(".pending-invites li", { hasText: ben.email }).waitFor();
  await page.getByLabel("Colleague's email").fill("wrong.address@clinic.example");
  await page.getByRole("button", { name: "Invite" }).click();
  const wrong = page.locator(".pending-invites li", { hasText: "wrong.address@clinic.example" });
  await wrong.getByRole("button", { name: "withdraw" }).click();
  await page.getByText("The invitation to wrong.address@clinic.example is withdrawn.").waitFor();
  await wrong.waitFor({ state: "detached" });
  await page.setViewportSize({ width: 1280, height: 800 });
  await shot(page, "host-open-invitations");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.locator(".pending-invites").scrollIntoViewIfNeeded();
  await shot(page, "host-open-invitations-phone");
  await page.setViewportSize({ width: 1100, height: 900 });
  await ben.page.goto(`${base}/#/groups`);
  await ben.page.getByText(/Open until /).waitFor();
  await ben.page.getByRole("button", { name: "Accept" }).click();
  await ben.page.getByRole("link", { name: "Trauma consultation" }).click();
  await ben.page.locator("#connection", { hasText: "Connected" }).waitFor();
  await page.goto(groupUrl);
  await page.locator("#connection", { hasText: "Connected" }).waitFor();
  await page.getByRole("textbox", { name: "Message" }).fill("Has anyone used EMDR with a teen who dissociates?");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await ben.page.locator("#messages .message", { hasText: "EMDR with a teen" }).waitFor();
  await ben.page.getByRole("textbox", { name: "Message" }).fill("Yes, go slowly with resourcing first.");
  await ben.page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator("#messages .message", { hasText: "resourcing" }).waitFor();
  await page.locator("#presence li", { hasText: "Ben" }).waitFor();
  await page.getByRole("textbox", { name: "Message" }).fill("Her mother is at 555-123-4567 if anyone knows the school");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await page.locator(".warning", { hasText: "555-123-4567" }).waitFor();
  await shot(page, "privacy-warning");
  await page.getByRole("button", { name: "Send anyway" }).click();
  await ben.page.locator("#messages .message", { hasText: "school" }).waitFor();
  // Reload mid-conversation: nothing lost, nothing doubled.
  await ben.page.reload();
  await ben.page.locator("#connection", { hasText: "Connected" }).waitFor();
  await ben.page.locator("#messages .message", { hasText: "school" }).waitFor();
  assert.equal(await ben.page.locator("#messages .message", { hasText: "EMDR with a teen" }).count(), 1);
  await shot(ben.page, "room");
});

await test("a supervisor runs a short session and an attendee downloads the hours CSV", async () => {
  execFileSync(kith, ["set-role", "--email", ana.email, "--role", "supervisor"], { env, stdio: "pipe" });
  // Sign in again so the page knows the new role.
  await ana.page.getByRole("button", { name: "Sign out" }).click();
  await ana.page.getByRole("heading", { name: "Sign in" }).waitFor();
  await ana.page.getByLabel("Email").fill(ana.email);
  await ana.page.getByLabel("Password").fill(password);
  await ana.page.getByRole("button", { name: "Sign in" }).click();
  await ana.page.getByRole("heading", { name: "Find colleagues" }).waitFor();

  // Supervisors sign hours with a second factor: she turns it on from her profile.
  await ana.page.goto(`${base}/#/profile`);
  const twoStep = ana.page.locator("section", { has: ana.page.getByRole("heading", { name: "Two-step sign-in" }) });
  await twoStep.getByText("supervisor powers wait").waitFor();
  await twoStep.getByLabel("Current password").fill(password);
  await twoStep.getByRole("button", { name: "Turn on two-step sign-in" }).click();
  await twoStep.locator("img.qr").waitFor();
  await ana.page.setViewportSize({ width: 1280, height: 800 });
  await twoStep.scrollIntoViewIfNeeded();
  await shot(ana.page, "two-step-qr");
  anaKey = await twoStep.locator("code.key").textContent();
  const key = anaKey;
  await twoStep.getByLabel("The six-digit code your app now shows").fill(authenticatorCode(key));
  await twoStep.getByRole("button", { name: "Confirm and turn on" }).click();
  const recovery = twoStep.locator(".recovery code");
  await recovery.first().waitFor();
  assert.equal(await recovery.count(), 10);
  const spare = await recovery.nth(3).textContent();
  await ana.page.setViewportSize({ width: 390, height: 844 });
  await twoStep.scrollIntoViewIfNeeded();
  await shot(ana.page, "two-step-recovery-codes-phone");
  await ana.page.setViewportSize({ width: 1100, height: 900 });
  // Signing in is now two steps; a recovery code stands in for the app once.
  await ana.page.getByRole("button", { name: "Sign out" }).click();
  await ana.page.getByRole("heading", { name: "Sign in" }).waitFor();
  await ana.page.getByLabel("Email").fill(ana.email);
  await ana.page.getByLabel("Password").fill(password);
  await ana.page.getByRole("button", { name: "Sign in" }).click();
  await ana.page.getByRole("heading", { name: "Enter your code" }).waitFor();
  await shot(ana.page, "two-step-code");
  await ana.page.getByLabel("Code", { exact: true }).fill("000000");
  await ana.page.getByRole("button", { name: "Sign in" }).click();
  await ana.page.locator(".error:not([hidden])", { hasText: "not right" }).waitFor();
  await ana.page.getByLabel("Code", { exact: true }).fill(spare);
  await ana.page.getByRole("button", { name: "Sign in" }).click();
  await ana.page.getByRole("heading", { name: "Find colleagues" }).waitFor();

  // Supervision counts under a verified licence: she gives hers, an administrator checks it.
  await ana.page.goto(`${base}/#/profile`);
  await ana.page.getByLabel("Licensed in (states)").fill("IL");
  await ana.page.getByLabel("License number").fill("PSY-48213");
  await ana.page.getByRole("button", { name: "Save profile" }).click();
  await ana.page.getByText("Profile saved.").waitFor();
  await verifyLicence("Ana");

  await ana.page.goto(groupUrl);
  const soon = new Date(Date.now() + 10 * 60 * 1000);
  const local = new Date(soon.getTime() - soon.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  await ana.page.getByLabel("Title").fill("Case review");
  await ana.page.getByLabel("Starts (your time zone)").fill(local);
  await ana.page.getByLabel("Minutes").fill("30");
  await ana.page.getByRole("button", { name: "Schedule" }).click();
  await ana.page.getByRole("button", { name: "Start", exact: true }).waitFor();
  await ben.page.goto(groupUrl);
  await ben.page.locator("#connection", { hasText: "Connected" }).waitFor();
  await ana.page.getByRole("button", { name: "Start", exact: true }).click();
  await ben.page.locator("#session-banner .banner", { hasText: "Live session: Case review" }).waitFor({ timeout: 10000 });
  await shot(ben.page, "live-session");
  // Long enough to count a minute.
  await ben.page.waitForTimeout(35000);
  await ana.page.locator("#connection", { hasText: "Connected" }).waitFor();
  await ana.page.getByRole("button", { name: "End", exact: true }).click();
  await ana.page.getByRole("button", { name: "Sign off attendance" }).click();
  await ana.page.getByRole("button", { name: "Sign off attendance" }).waitFor({ state: "detached" });
  await ana.page.locator("li[data-session]", { hasText: "ended" }).waitFor();
  await ben.page.goto(`${base}/#/sessions`);
  await ben.page.locator("#total-hours", { hasText: "0.02 hours" }).waitFor();
  await shot(ben.page, "hours");
  const [download] = await Promise.all([ben.page.waitForEvent("download"), ben.page.getByRole("button", { name: "Download CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8").trim().split("\n");
  assert.equal(csv[0], "date,group,session,kind,minutes,hours,supervisor,supervisor_license,signed_at,adjusted_reason,supervisee,dispute_note");
  assert.match(csv[1], /Trauma consultation,Case review,group_supervision,1,0\.02,Ana,IL PSY-48213,.*,awaiting the supervisee's confirmation,$/);
  // Ben disputes the minute: it is marked wherever the line is shown.
  const row = ben.page.locator("#ledger tr[data-session]").first();
  await row.getByLabel("Why the line is wrong").fill("I was there for the whole half hour.");
  await row.getByRole("button", { name: "Dispute" }).click();
  await ben.page.locator("#ledger tr[data-session]", { hasText: "Disputed I was there for the whole half hour." }).waitFor();
  await ben.page.setViewportSize({ width: 1280, height: 800 });
  await shot(ben.page, "hours-disputed");
  await ben.page.setViewportSize({ width: 390, height: 844 });
  await shot(ben.page, "hours-disputed-phone");
  await ben.page.setViewportSize({ width: 1100, height: 900 });
});


await test("a colleague declines with a reason; a cascade goes to the match shortlist", async () => {
  const page = ana.page;
  await page.goto(`${base}/#/refer`);
  await page.getByLabel("How to send it").selectOption("cascade");
  await page.getByLabel("State", { exact: true }).fill("IL");
  await page.locator("select[name=concerns]").selectOption(["trauma-ptsd"]);
  await page.getByLabel("Client's name").fill("Sam Placeholder");
  await page.getByRole("button", { name: "Send referral" }).click();
  // Without a way to reach the client, the form says so.
  await page.locator(".error:not([hidden])", { hasText: "phone number or an email" }).waitFor();
  await page.getByLabel("Phone").fill("555-201-9988");
  let listed = false;
  for (let i = 0; i < 20 && !listed; i++) {
    await page.getByRole("button", { name: "Find the best colleagues" }).click();
    listed = await page.locator("ol li", { hasText: "Ben" }).waitFor({ timeout: 500 }).then(() => true, () => false);
  }
  assert.ok(listed, "Ben is on the shortlist");
  await shot(page, "shortlist");
  await page.getByRole("button", { name: "Send referral" }).click();
  await page.locator("#status", { hasText: "requested" }).waitFor();

  await ben.page.goto(`${base}/#/referrals?box=inbox&status=requested`);
  await ben.page.locator("ul.list a").first().click();
  await ben.page.getByLabel("Reason").selectOption("not_a_fit");
  await ben.page.getByRole("button", { name: "Decline" }).click();
  await page.locator("#timeline li", { hasText: "declined" }).or(page.locator("#status", { hasText: /declined|expired/ })).first().waitFor({ timeout: 10000 });
  await shot(page, "declined");
});

await test("a host deletes a message and everyone sees it go; after the server restarts nothing is lost or doubled", async () => {
  await ana.page.goto(groupUrl);
  await ben.page.goto(`${base}/#/search`);
  await ben.page.goto(groupUrl);
  for (const p of [ana.page, ben.page]) await p.locator("#connection", { hasText: "Connected" }).waitFor();
  await ben.page.getByRole("textbox", { name: "Message" }).fill("an unkind remark");
  await ben.page.getByRole("button", { name: "Send", exact: true }).click();
  const remark = ana.page.locator("#messages .message", { hasText: "an unkind remark" });
  await remark.waitFor();
  await remark.getByRole("button", { name: "Delete message" }).click();
  await ben.page.locator("#messages .message.deleted").waitFor();
  assert.equal(await ben.page.locator("#messages .message", { hasText: "an unkind remark" }).count(), 0);

  // The network goes: the server dies and comes back on the same address.
  await stopServer();
  await ben.page.locator("#connection", { hasText: "Reconnecting" }).waitFor();
  // Written while offline: kept and sent on reconnecting.
  await ben.page.getByRole("textbox", { name: "Message" }).fill("written while the line was down");
  await ben.page.getByRole("button", { name: "Send", exact: true }).click();
  await startServer();
  for (const p of [ana.page, ben.page]) await p.locator("#connection", { hasText: "Connected" }).waitFor({ timeout: 20000 });
  await ana.page.locator("#messages .message", { hasText: "written while the line was down" }).waitFor({ timeout: 10000 });
  await ana.page.getByRole("textbox", { name: "Message" }).fill("back again");
  await ana.page.getByRole("button", { name: "Send", exact: true }).click();
  await ben.page.locator("#messages .message", { hasText: "back again" }).waitFor();
  await ben.page.waitForTimeout(500);
  for (const p of [ana.page, ben.page]) {
    assert.equal(await p.locator("#messages .message", { hasText: "written while the line was down" }).count(), 1);
    assert.equal(await p.locator("#messages .message", { hasText: "back again" }).count(), 1);
  }
  await shot(ben.page, "after-reconnect");
});

await test("thirty minutes without activity end the session", async () => {
  await ana.page.goto(`${base}/#/referrals`);
  await ana.page.getByRole("heading", { name: "Referrals" }).waitFor();
  await ana.page.evaluate(() => localStorage.setItem("kith.active", String(Date.now() - 31 * 60 * 1000)));
  await ana.page.reload();
  await ana.page.getByRole("heading", { name: "Sign in" }).waitFor();
});

await test("signing out ends the session in the browser", async () => {
  await ben.page.getByRole("button", { name: "Sign out" }).click();
  await ben.page.getByRole("heading", { name: "Sign in" }).waitFor();
  await ben.page.goto(`${base}/#/referrals`);
  await ben.page.getByRole("heading", { name: "Sign in" }).waitFor();
});

// Mail is written as .eml files here (no SMTP server in this run).
function mailTo(address, subject) {
  const dir = join(env.KITH_DATA_DIR, "mail");
  return readdirSync(dir)
    .map((f) => readFileSync(join(dir, f), "utf8").replace(/=\r?\n/g, "").replace(/=3D/g, "="))
    .filter((m) => m.includes(`To: ${address}`) && m.includes(subject));
}

await test("a forgotten password: the emailed link sets a new one, once, at desk and phone sizes", async () => {
  const page = ben.page;
  await page.goto(`${base}/#/signin`);
  await page.getByRole("link", { name: "Forgot your password?" }).click();
  await page.getByRole("heading", { name: "Forgot your password?" }).waitFor();
  await page.getByLabel("Email").fill(ben.email);
  await page.getByRole("button", { name: "Email me a link" }).click();
  await page.getByRole("status").filter({ hasText: "emailed it a link" }).waitFor();
  await page.setViewportSize({ width: 1280, height: 800 });
  await shot(page, "forgot-password");
  const link = await linkInMail(ben.email, "Reset your Kith password", "reset-password");
  await page.goto(link);
  await page.getByRole("heading", { name: "Choose a new password" }).waitFor();
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "reset-password-phone");
  const fresh = "harbour violet seventeen kites";
  await page.getByLabel("New password").fill(fresh);
  await page.getByRole("button", { name: "Set password" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
  // The link is spent: a second use says so next to nothing but the form.
  await page.goto(link);
  await page.getByLabel("New password").fill("another long passphrase");
  await page.getByRole("button", { name: "Set password" }).click();
  await page.locator(".error:not([hidden])").filter({ hasText: "already used" }).waitFor();
  await page.setViewportSize({ width: 1100, height: 900 });
  await page.goto(`${base}/#/signin`);
  await page.getByLabel("Email").fill(ben.email);
  await page.getByLabel("Password").fill(fresh);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Find colleagues" }).waitFor();
});

await test("a clinician sees where she is signed in and signs out another browser", async () => {
  const laptop = await person("Ana");
  await laptop.page.goto(`${base}/#/signin`);
  await laptop.page.getByLabel("Email").fill(ana.email);
  await laptop.page.getByLabel("Password").fill(password);
  await laptop.page.getByRole("button", { name: "Sign in" }).click();
  // Her supervisor account signs in in two steps, with the app's code.
  await laptop.page.getByLabel("Code", { exact: true }).fill(authenticatorCode(anaKey));
  await laptop.page.getByRole("button", { name: "Sign in" }).click();
  await laptop.page.getByRole("heading", { name: "Find colleagues" }).waitFor();
  const page = laptop.page;
  await page.goto(`${base}/#/profile`);
  const section = page.getByRole("region", { name: "Where you are signed in" });
  await section.getByText("(this browser)").waitFor();
  const others = section.getByRole("button", { name: "Sign out there" });
  assert.ok((await others.count()) >= 1, "the other browser is listed");
  await page.setViewportSize({ width: 1280, height: 800 });
  await section.scrollIntoViewIfNeeded();
  await shot(page, "sign-ins");
  await page.setViewportSize({ width: 390, height: 844 });
  await section.scrollIntoViewIfNeeded();
  await shot(page, "sign-ins-phone");
  const before = await others.count();
  await others.first().click();
  await page.getByText(/^Signed out /).waitFor();
  assert.equal(await section.getByRole("button", { name: "Sign out there" }).count(), before - 1);
  await laptop.context.close();
});

await test("the clients' names, phones and emails are nowhere but their sealed contact rows", async () => {
  const traces = ["Jordan Example", "555-201-3344", "5552013344", "Sam Placeholder", "555-201-9988", "5552019988"];
  const places = [["the addresses the browsers visited", visited.join("\n")], ["the server's log", readFileSync(serverLog, "utf8")]];
  const mail = join(env.KITH_DATA_DIR, "mail");
  for (const f of readdirSync(mail)) places.push([`the email ${f}`, readFileSync(join(mail, f), "utf8")]);
  const tables = query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' AND table_name <> 'referral_contacts'").trim().split("\n");
  assert.ok(tables.includes("audit_log") && visited.length > 100);
  for (const t of tables) places.push([`the table ${t}`, query(`SELECT row_to_json(t) FROM ${t} t`)]);
  places.push(["the sealed contact rows", query("SELECT row_to_json(c) FROM referral_contacts c")]);
  for (const [where, text] of places) {
    for (const trace of traces) assert.ok(!text.includes(trace), `${trace} appears in ${where}`);
  }
});

await browser.close();
await stopServer();
psql(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
console.log(results.join("\n"));
console.log(`screenshots: ${out}`);
process.exit(failed ? 1 : 0);
