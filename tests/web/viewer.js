#!/usr/bin/env node
// Drives tests/web/viewer.html in the system's headless chromium (playwright-core; never
// downloads a browser).  One JSON argument:
//   {"url": "http://127.0.0.1:PORT/viewer.html?glb=/model.glb",
//    "chromium": "/usr/bin/chromium", "timeoutMs": 30000,
//    "shots": [{"angle": 0, "view": "body" | "head", "size": 512, "out": "/abs/path.png"}]}
// Prints {"report": <window.acsReport>, "shots": [paths], "console": [...], "timingsMs": {...}}
// on stdout; exit 1 when the page reports an error or times out, 2 on usage errors.
'use strict';
const fs = require('fs');
const { launch } = require('./chromium');

async function main() {
  if (process.argv.length !== 3) { console.error('usage: node viewer.js JSON'); process.exit(2); }
  const opt = JSON.parse(process.argv[2]);
  const timeout = opt.timeoutMs || 30000;
  const t = { start: Date.now() };
  const browser = await launch(opt.chromium, timeout);
  const consoleLines = [];
  let status = 0;
  const out = { report: null, shots: [], console: consoleLines, timingsMs: {} };
  try {
    t.launched = Date.now();
    const page = await browser.newPage({ viewport: { width: 256, height: 256 } });
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e}`));
    await page.goto(opt.url, { timeout });
    await page.waitForFunction(() => document.title !== 'acs:loading', null, { timeout });
    out.report = await page.evaluate(() => window.acsReport);
    t.loaded = Date.now();
    if (!out.report || out.report.error) {
      status = 1;
    } else {
      for (const s of opt.shots || []) {
        const url = await page.evaluate(([a, v, px]) => window.acsRender(a, v, px), [s.angle || 0, s.view || 'body', s.size || 512]);
        fs.writeFileSync(s.out, Buffer.from(url.slice(url.indexOf(',') + 1), 'base64'));
        out.shots.push(s.out);
      }
    }
    t.rendered = Date.now();
    out.timingsMs = { launch: t.launched - t.start, load: t.loaded - t.launched, render: t.rendered - t.loaded };
  } catch (e) {
    status = 1;
    out.error = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(status);
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
