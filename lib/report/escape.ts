/**
 * Escaping for the HTML reports. Every string that came from a run record (model completions, prompts,
 * experiment names, metric keys, manifest fields) goes through `escapeHtml` before it reaches markup, and
 * every JSON value embedded in a `<script type="application/json">` goes through `jsonForScript`.
 * @module
 */

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Escape text for an HTML text node or a quoted attribute value. Non-strings are stringified first. */
export function escapeHtml(value: unknown): string {
  return String(value ?? "").replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * JSON for embedding inside a `<script type="application/json">` element: `<`, `>`, `&` and the JS line
 * separators are written as `\uXXXX`, so no value can close the element or open a comment.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}
