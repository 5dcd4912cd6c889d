#!/usr/bin/env node
// Khronos glTF-Validator on .glb files: `node tests/web/validate.js a.glb [b.glb ...]`.
// Prints one JSON array on stdout: [{file, numErrors, numWarnings, numInfos, numHints, messages, info}].
// Exit status 0 when every report was produced (whatever their issues), 2 on a usage/IO error.
'use strict';
const fs = require('fs');
const path = require('path');
const validator = require('gltf-validator');

async function main(files) {
  if (files.length === 0) {
    console.error('usage: node validate.js FILE.glb [FILE.glb ...]');
    process.exit(2);
  }
  const out = [];
  for (const f of files) {
    const bytes = new Uint8Array(fs.readFileSync(f));
    const report = await validator.validateBytes(bytes, {
      uri: path.basename(f),
      maxIssues: 100,
      format: 'glb',
      // external resources are not allowed: everything must be inside the glb
      externalResourceFunction: (uri) => Promise.reject(new Error(`external resource ${uri} not allowed`)),
    });
    const iss = report.issues;
    out.push({
      file: f,
      validatorVersion: report.validatorVersion,
      numErrors: iss.numErrors,
      numWarnings: iss.numWarnings,
      numInfos: iss.numInfos,
      numHints: iss.numHints,
      truncated: iss.truncated,
      messages: iss.messages.map((m) => ({ code: m.code, severity: m.severity, message: m.message, pointer: m.pointer })),
      info: report.info,
    });
  }
  process.stdout.write(JSON.stringify(out));
}

main(process.argv.slice(2)).catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(2);
});
