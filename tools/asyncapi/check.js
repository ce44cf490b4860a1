#!/usr/bin/env node
// Parses and validates an AsyncAPI document with the official parser (schema, rules, $refs
// to files resolved relative to the document) and prints what it found as one JSON object:
// {"valid", "diagnostics": [{severity, code, message, path}], "channels": {id: address},
// "operations": {id: {action, channel}}, "servers": {id: {host, protocol}}}.
// Exit code: 0 valid, 1 errors (or warnings with --strict), 2 the file could not be read.
"use strict";

const path = require("path");
const { Parser, fromFile, DiagnosticSeverity } = require("@asyncapi/parser");

const SEVERITY = {
  [DiagnosticSeverity.Error]: "error",
  [DiagnosticSeverity.Warning]: "warning",
  [DiagnosticSeverity.Information]: "information",
  [DiagnosticSeverity.Hint]: "hint",
};

async function main() {
  const args = process.argv.slice(2);
  const strict = args.includes("--strict");
  const file = args.find((a) => !a.startsWith("--"));
  if (!file) {
    console.error("usage: check.js [--strict] ASYNCAPI_FILE");
    process.exit(2);
  }
  const parser = new Parser();
  let result;
  try {
    result = await fromFile(parser, path.resolve(file)).parse();
  } catch (error) {
    console.log(JSON.stringify({ valid: false, diagnostics: [{ severity: "error", code: "read", message: String(error), path: [] }] }));
    process.exit(2);
  }
  const diagnostics = result.diagnostics.map((d) => ({
    severity: SEVERITY[d.severity] || String(d.severity),
    code: String(d.code),
    message: d.message,
    path: d.path,
  }));
  const failing = diagnostics.filter(
    (d) => d.severity === "error" || (strict && d.severity === "warning"),
  );
  const report = { valid: Boolean(result.document) && failing.length === 0, diagnostics };
  if (result.document) {
    const doc = result.document;
    report.channels = Object.fromEntries(doc.channels().all().map((c) => [c.id(), c.address()]));
    report.operations = Object.fromEntries(
      doc.operations().all().map((o) => [o.id(), { action: o.action(), channel: o.channels().all().map((c) => c.id()) }]),
    );
    report.servers = Object.fromEntries(
      doc.servers().all().map((s) => [s.id(), { host: s.host(), protocol: s.protocol() }]),
    );
  }
  console.log(JSON.stringify(report, null, 2));
  process.exit(report.valid ? 0 : 1);
}

main();
