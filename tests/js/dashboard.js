#!/usr/bin/env node
// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core, for
// tests/tests/dashboard.rs: opens the broker's dashboard at DASHBOARD_URL and
//  1. waits for the clients table row of CLIENT_ID,
//  2. waits until the "messages in" rate shows a number above 0,
//  3. with --search PREFIX, types PREFIX into the client search box and waits
//     until only client ids starting with it are listed (then clears it),
//  4. types FILTER into the topic monitor, presses Enter (the form's Watch) and
//     waits until it is live and shows a row of TOPIC,
//  5. saves a full-page screenshot,
//  6. with --disconnect ID, clicks that client's "disconnect" button (accepting
//     the confirmation) and waits until its row is gone.
// Prints one JSON line with what it saw; exits 1 (after the screenshot and the
// JSON) if a step timed out, 2 on a usage or launch error.
//
//   node dashboard.js DASHBOARD_URL --client ID --filter FILTER --topic TOPIC
//        --screenshot FILE [--search PREFIX] [--disconnect ID] [--chromium PATH] [--timeout MS]
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

function parse(argv) {
  const opts = {
    url: null,
    client: null,
    filter: null,
    topic: null,
    screenshot: null,
    disconnect: null,
    search: null,
    chromium: "/usr/bin/chromium",
    timeout: 20000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    switch (a) {
      case "--client": opts.client = value(); break;
      case "--filter": opts.filter = value(); break;
      case "--topic": opts.topic = value(); break;
      case "--screenshot": opts.screenshot = value(); break;
      case "--disconnect": opts.disconnect = value(); break;
      case "--search": opts.search = value(); break;
      case "--chromium": opts.chromium = value(); break;
      case "--timeout": opts.timeout = Number(value()); break;
      default:
        if (a.startsWith("--") || opts.url) throw new Error(`unexpected argument ${a}`);
        opts.url = a;
    }
  }
  if (!opts.url || !opts.client || !opts.filter || !opts.topic || !opts.screenshot) {
    throw new Error("usage: dashboard.js URL --client ID --filter FILTER --topic TOPIC --screenshot FILE");
  }
  return opts;
}

// A CSS attribute selector matching `value` exactly (a JSON string is a valid CSS string).
const attr = (name, value) => `[${name}=${JSON.stringify(value)}]`;

async function main() {
  const opts = parse(process.argv.slice(2));
  if (!fs.existsSync(opts.chromium)) {
    throw new Error(`${opts.chromium} not found: install Debian's chromium (scripts/test does)`);
  }
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "pigeon-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: opts.chromium,
    headless: true,
    viewport: { width: 1280, height: 800 },
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
  const consoleLines = [];
  const outcome = { steps: {}, failed: null, dialogs: [] };
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
    page.on("dialog", (d) => {
      outcome.dialogs.push(`${d.type()}: ${d.message()}`);
      d.accept();
    });
    page.setDefaultTimeout(opts.timeout);

    // Runs one step; a timeout records the failure and skips the steps after it.
    const step = async (name, run) => {
      if (outcome.failed) return;
      try {
        outcome.steps[name] = (await run()) ?? true;
      } catch (e) {
        outcome.steps[name] = false;
        outcome.failed = `${name}: ${e.message.split("\n")[0]}`;
      }
    };

    await page.goto(opts.url);
    const clientRow = page.locator(`#clients tr${attr("data-client-id", opts.client)}`);
    await step("client_row", async () => {
      await clientRow.waitFor();
      return clientRow.locator("td").allInnerTexts();
    });
    if (opts.search) {
      await step("search", async () => {
        await page.locator("#client-search").fill(opts.search);
        const ids = await page.waitForFunction((prefix) => {
          const rows = Array.from(document.querySelectorAll("#clients tr[data-client-id]"), (r) => r.dataset.clientId);
          return rows.length && rows.every((id) => id.startsWith(prefix)) ? rows : null;
        }, opts.search);
        await page.locator("#client-search").fill("");
        return ids.jsonValue();
      });
    }
    await step("rate_in", async () => {
      const rate = await page.waitForFunction(() => {
        const text = document.getElementById("rate-in").textContent.replace(/,/g, "");
        const n = Number.parseFloat(text);
        return n > 0 ? n : null;
      });
      return rate.jsonValue();
    });
    await step("monitor_row", async () => {
      // Enter in the filter box submits the form as Watch does. A click is
      // aimed at coordinates, and the tables above re-render every second:
      // a row added or removed between aiming and clicking moves the button
      // away (the click then lands elsewhere and the monitor stays idle).
      await page.locator("#monitor-filter").fill(opts.filter);
      await page.locator("#monitor-filter").press("Enter");
      await page.waitForFunction(() => document.getElementById("monitor-state").dataset.state === "live");
      const row = page.locator(`#monitor-messages tr${attr("data-topic", opts.topic)}`).first();
      await row.waitFor();
      return row.locator("td").allInnerTexts();
    });
    // Let the chart get a few live points past the seeded history.
    await step("settled", () => page.waitForTimeout(1500));
    await page.screenshot({ path: opts.screenshot, fullPage: true });

    const text = (selector) => page.locator(selector).innerText();
    Object.assign(outcome, {
      title: await page.title(),
      status: await text("#status"),
      node: await text("#node"),
      rate_in: await text("#rate-in"),
      rate_out: await text("#rate-out"),
      connections: await text("#connections"),
      drops: await page.locator("#drops tr").evaluateAll((rows) =>
        Object.fromEntries(rows.map((r) => [r.dataset.reason, r.cells[1].textContent])),
      ),
      clients: await page.locator("#clients tr[data-client-id]").evaluateAll((rows) => rows.map((r) => r.dataset.clientId)),
      client_cells: await page.locator("#clients tr[data-client-id]").evaluateAll((rows) =>
        rows.map((r) => Array.from(r.cells, (c) => c.textContent)),
      ),
      subscriptions: await page.locator("#subscriptions tr[data-filter]").evaluateAll((rows) =>
        rows.map((r) => [r.dataset.clientId, r.dataset.filter]),
      ),
      monitor_state: await text("#monitor-state"),
      monitor_rows: await page.locator("#monitor-messages tr[data-topic]").count(),
      monitor_first: await page.locator("#monitor-messages tr[data-topic]").first().evaluate(
        (r) => Array.from(r.cells, (c) => c.textContent),
      ).catch(() => null),
      // Elements other than the page's own inside the data tables: markup from
      // a client id or a payload that was parsed instead of shown as text.
      foreign_elements: await page.evaluate(() =>
        Array.from(document.querySelectorAll("#clients *, #subscriptions *, #monitor-messages *"))
          .map((e) => e.tagName.toLowerCase())
          .filter((t) => !["tr", "td", "button", "span"].includes(t)),
      ),
      token_in_address_bar: page.url().includes("token="),
    });

    if (opts.disconnect) {
      await step("disconnected", async () => {
        const row = page.locator(`#clients tr${attr("data-client-id", opts.disconnect)}`);
        await row.locator("button.danger").click();
        await row.waitFor({ state: "detached" });
        return true;
      });
    }
  } finally {
    outcome.console = consoleLines;
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(JSON.stringify(outcome));
  process.exit(outcome.failed ? 1 : 0);
}

main().catch((err) => {
  console.error(`dashboard.js: ${err && err.stack ? err.stack : err}`);
  process.exit(2);
});
