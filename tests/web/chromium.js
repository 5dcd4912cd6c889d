// The system's headless chromium for the node drivers here (browser.js, viewer.js), through
// playwright-core (which never downloads a browser); SwiftShader draws WebGL without a GPU.
'use strict';
const { chromium } = require('playwright-core');

const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

function launch(executablePath, timeout) {
  return chromium.launch({ executablePath: executablePath || '/usr/bin/chromium', headless: true, args: ARGS, timeout });
}

module.exports = { launch };
