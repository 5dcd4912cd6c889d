#!/usr/bin/env node
// A page in the system's headless chromium, remote-controlled by tests/browser.py over
// stdin/stdout, one JSON command per line (playwright-core; never downloads a browser):
//   {"cmd": "goto", "url"}                        -> {"ms": load time}
//   {"cmd": "wait", "js", "timeoutMs"}            -> waits until the expression is truthy
//   {"cmd": "eval", "js"}                         -> {"value": the expression's (awaited) value}
//   {"cmd": "click" | "focus", "selector"}
//   {"cmd": "fill", "selector", "value"}          (inputs, colour pickers, sliders via eval)
//   {"cmd": "select", "selector", "value"}        (a <select>: choose the option with that value)
//   {"cmd": "press", "selector", "key"}           (keyboard on a focused element)
//   {"cmd": "files", "selector", "path"}          (a file input)
//   {"cmd": "shot", "selector", "path"}           (PNG of an element)
//   {"cmd": "close"}
// Every answer is {"ok": true, ...} or {"ok": false, "error"}; the page's console and errors
// come back in each answer's "console" (lines since the previous answer).
// Argument: {"chromium": "/usr/bin/chromium", "width": 1280, "height": 900}
'use strict';
const readline = require('readline');
const { launch } = require('./chromium');

async function main() {
  const opt = JSON.parse(process.argv[2] || '{}');
  const browser = await launch(opt.chromium, 60000);
  // bypassCSP: the driver's own evaluations (waitForFunction) use eval, which the page's policy forbids
  const page = await browser.newPage({ viewport: { width: opt.width || 1280, height: opt.height || 900 }, bypassCSP: true });
  let lines = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => lines.push(`pageerror: ${e}`));
  const send = (o) => {
    o.console = lines;
    lines = [];
    process.stdout.write(JSON.stringify(o) + '\n');
  };
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    const c = JSON.parse(line);
    const timeout = c.timeoutMs || 30000;
    try {
      const t0 = Date.now();
      if (c.cmd === 'goto') {
        await page.goto(c.url, { timeout });
        send({ ok: true, ms: Date.now() - t0 });
      } else if (c.cmd === 'wait') {
        await page.waitForFunction(c.js, null, { timeout, polling: 50 });
        send({ ok: true, ms: Date.now() - t0 });
      } else if (c.cmd === 'eval') {
        send({ ok: true, value: await page.evaluate(c.js) });
      } else if (c.cmd === 'click') {
        await page.click(c.selector, { timeout });
        send({ ok: true });
      } else if (c.cmd === 'focus') {
        await page.focus(c.selector, { timeout });
        send({ ok: true });
      } else if (c.cmd === 'fill') {
        await page.fill(c.selector, c.value, { timeout });
        send({ ok: true });
      } else if (c.cmd === 'select') {
        await page.selectOption(c.selector, c.value, { timeout });
        send({ ok: true });
      } else if (c.cmd === 'press') {
        await page.press(c.selector, c.key, { timeout });
        send({ ok: true });
      } else if (c.cmd === 'files') {
        await page.setInputFiles(c.selector, c.path, { timeout });
        send({ ok: true });
      } else if (c.cmd === 'shot') {
        await page.locator(c.selector).screenshot({ path: c.path, timeout });
        send({ ok: true });
      } else if (c.cmd === 'close') {
        send({ ok: true });
        break;
      } else {
        send({ ok: false, error: `unknown command ${c.cmd}` });
      }
    } catch (e) {
      send({ ok: false, error: String(e && e.message || e) });
    }
  }
  await browser.close();
}

main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
