#!/usr/bin/env node
// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for
// tests/tests/browser.rs: opens PAGE_URL, waits until the page shows TEXT in its
// message list, saves a screenshot and prints one JSON line with the page's
// status and messages. Exits 1 (after a screenshot) if TEXT does not show in time.
//
//   node browser.js PAGE_URL --expect TEXT --screenshot FILE [--chromium PATH]
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

function parse(argv) {
  const opts = { url: null, expect: null, screenshot: null, chromium: "/usr/bin/chromium", timeout: 20000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--expect": opts.expect = value(); break;
      case "--screenshot": opts.screenshot = value(); break;
      case "--chromium": opts.chromium = value(); break;
      case "--timeout": opts.timeout = Number(value()); break;
      default:
        if (a.startsWith("--") || opts.url) throw new Error(`unexpected argument ${a}`);
        opts.url = a;
    }
  }
  if (!opts.url || !opts.expect || !opts.screenshot) {
    throw new Error("usage: browser.js PAGE_URL --expect TEXT --screenshot FILE");
  }
  return opts;
}

async function main() {
  const opts = parse(process.argv.slice(2));
  if (!fs.existsSync(opts.chromium)) {
    throw new Error(`${opts.chromium} not found: install Debian's chromium (scripts/test does)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pigeon-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    viewport: { width: 800, height: 450 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const console_lines = [];
  let outcome;
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (m) => console_lines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => console_lines.push(`pageerror: ${e.message}`));
    await page.goto(opts.url);
    let found = true;
    try {
      await page.locator("#messages li", { hasText: opts.expect }).first().waitFor({ timeout: opts.timeout });
    } catch (e) {
      found = false;
    }
    await page.screenshot({ path: opts.screenshot });
    outcome = {
      found,
      title: await page.title(),
      status: await page.locator("#status").innerText(),
      messages: await page.locator("#messages li").allInnerTexts(),
      console: console_lines,
    };
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(outcome));
  process.exit(outcome.found ? 0 : 1);
}

main().catch((err) => {
  console.error(`browser.js: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
