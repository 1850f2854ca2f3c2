// Render LaTeX strings with KaTeX and report each one's error (or null).
//
// Usage: node tests/katex_render.js KATEX_PREFIX < items.json
//   KATEX_PREFIX: the folder given to `npm install --prefix` (holds node_modules/katex).
//   stdin: a JSON list of {"tex": "...", "display": true|false}.
//   stdout: a JSON list, one entry per item: null when it renders, else the error message.
// One process checks all strings; every string is rendered with throwOnError
// and strict mode "error", so unknown commands and non-LaTeX input both fail.
"use strict";
const path = require("path");

const prefix = process.argv[2];
if (!prefix) {
  process.stderr.write("usage: node katex_render.js KATEX_PREFIX < items.json\n");
  process.exit(2);
}
const katex = require(path.resolve(prefix, "node_modules", "katex"));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const items = JSON.parse(input);
  const results = items.map(({ tex, display }) => {
    try {
      katex.renderToString(tex, { displayMode: Boolean(display), throwOnError: true, strict: "error" });
      return null;
    } catch (err) {
      return String((err && err.message) || err);
    }
  });
  process.stdout.write(JSON.stringify(results));
});
