// Loads Sluice's status page in headless Chromium and reports what it shows.
//
//   node status.mjs <admin URL> <proxy URL> <screenshot.png>
//
// It waits for the first render, reads the tables, then sends requests to
// the proxy itself and waits for the page's counters to follow without a
// reload. Prints one JSON object on stdout for the Go test to check.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [admin, proxy, shot] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "sluice-chromium-"));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1360, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = ctx.pages()[0] || (await ctx.newPage());
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(admin)) external.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  await page.goto(admin + "/", { waitUntil: "load" });
  await page.waitForSelector("tr[data-plugin]", { timeout: 10000 });
  await page.waitForFunction(() => document.getElementById("live").textContent.startsWith("live"));

  const read = () => page.evaluate(() => {
    const rows = (sel) => [...document.querySelectorAll(sel)].map((tr) =>
      [...tr.children].map((td) => td.textContent.trim()));
    return {
      generation: document.getElementById("generation").textContent,
      reload: document.getElementById("reload").textContent,
      routes: rows("#routes tr"),
      plugins: rows("#plugins tr"),
      upstreams: rows("#upstreams tr"),
      title: document.title,
    };
  });
  const before = await read();

  // Refreshed in place: a marker set on the window survives, and the
  // counter of the "plain" route follows new traffic.
  await page.evaluate(() => { window.__sluiceMarker = 42; });
  const cell = () => page.evaluate(() => document.querySelector('tr[data-route="plain"]').children[4].textContent);
  const start = Number((await cell()).replace(/,/g, ""));
  for (let i = 0; i < 3; i++) await (await fetch(proxy + "/plain/more")).text();
  await page.waitForFunction((want) =>
    Number(document.querySelector('tr[data-route="plain"]').children[4].textContent.replace(/,/g, "")) >= want,
    start + 3, { timeout: 10000 });
  const after = await read();
  const marker = await page.evaluate(() => window.__sluiceMarker);

  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ before, after, start, marker, external, errors }));
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
