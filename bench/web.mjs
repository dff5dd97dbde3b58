// Measures the web client in headless Chromium (see scripts/bench-web):
// first meaningful paint per page (navigation start to the page's heading
// being painted) and the search box (last keystroke to new results shown).
import { createRequire } from "node:module";
const require = createRequire(new URL("../tests/web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [base, email, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = await (await browser.newContext()).newPage();
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.round((xs.length - 1) * p))];

await page.goto(`${base}/#/signin`);
await page.getByLabel("Email").fill(email);
await page.getByLabel("Password").fill(password);
await page.getByRole("button", { name: "Sign in" }).click();
await page.getByRole("heading", { name: "Find colleagues" }).waitFor();

// First meaningful paint: a full load of each page, five times, cold JS each time.
const pages = [["#/signin", "Sign in"], ["#/search", "Find colleagues"], ["#/profile", "My profile"], ["#/referrals", "Referrals"], ["#/groups", "Consultation groups"], ["#/sessions", "Sessions"]];
for (const [hash, heading] of pages) {
  const times = [];
  for (let i = 0; i < 5; i++) {
    await page.goto("about:blank");
    const start = Date.now();
    await page.goto(`${base}/${hash}`);
    await page.getByRole("heading", { name: heading, exact: true }).waitFor();
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    times.push(Date.now() - start);
  }
  console.log(`first meaningful paint ${hash}: median ${pct(times, 0.5)} ms, max ${Math.max(...times)} ms`);
}

// Search as you type: measured inside the page, from the last input event
// to the moment the results for that text are in the document.
await page.goto(`${base}/#/search`);
await page.getByRole("heading", { name: "Find colleagues" }).waitFor();
await page.evaluate(() => {
  window.lastInput = 0;
  window.shown = {};
  document.querySelector("input[name=q]").addEventListener("input", () => { window.lastInput = performance.now(); }, true);
  const results = document.querySelector("section[aria-label=Results]");
  new MutationObserver(() => {
    const q = results.dataset.query;
    if (q && !(q in window.shown)) window.shown[q] = performance.now() - window.lastInput;
  }).observe(results, { attributes: true, attributeFilter: ["data-query"] });
});
const box = page.getByLabel("Search colleagues");
const words = ["traumma", "anxiety teen", "emdr", "couples", "grief", "ocd", "depression spanish", "adhd", "eating disorder", "bipolar"];
const times = [];
for (let round = 0; round < 3; round++) {
  for (const word of words) {
    await box.fill("");
    await page.waitForTimeout(300);
    await page.evaluate(() => { window.shown = {}; });
    await box.pressSequentially(word, { delay: 40 });
    await page.locator(`section[data-query="${word}"]`).waitFor();
    times.push(Math.round(await page.evaluate((w) => window.shown[w], word)));
  }
}
console.log(`search results after the last keystroke (${times.length} queries typed at 40 ms a key; debounce 80 ms): median ${pct(times, 0.5)} ms, p95 ${pct(times, 0.95)} ms, max ${Math.max(...times)} ms`);
await browser.close();
