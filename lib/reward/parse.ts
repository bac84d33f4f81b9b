/**
 * Strict parser of the completion format `<think>...</think><answer>...</answer>`.
 *
 * A completion is valid iff, after removing whitespace at its ends, it is exactly one think block followed by
 * one answer block:
 *   ^\s* <think> T </think> \s* <answer> A </answer> \s*$
 * where
 * - the four tags are spelled exactly as above (lowercase, no spaces or attributes);
 * - T and A contain no tag-like string of either name in any spelling (`<think>`, `</ANSWER>`, `< answer >`,
 *   ...): no nesting, no second block, no stray closer;
 * - A is not empty after trimming (T may be empty: the R1 format regex allows it, and a short think is what
 *   the length-versus-accuracy study measures, not a format error);
 * - nothing but whitespace stands before `<think>`, between `</think>` and `<answer>`, or after `</answer>`.
 * The text is the decoded completion without EOS/padding (the trainer strips stop tokens before decoding).
 * `think` and `answer` are returned trimmed.
 * @module
 */

/** Result of {@link parseCompletion}: `think`/`answer` are null unless `ok`; `reason` says why not. */
export interface ParsedCompletion {
  ok: boolean;
  think: string | null;
  answer: string | null;
  reason?: string;
}

/** Any tag-like occurrence of think/answer, in any case and spacing. */
const TAG_RE = /<\s*(\/?)\s*(think|answer)\b[^<>]*>/gi;

const EXPECTED = ["<think>", "</think>", "<answer>", "</answer>"] as const;

function fail(reason: string): ParsedCompletion {
  return { ok: false, think: null, answer: null, reason };
}

function isBlank(s: string): boolean {
  return s.trim().length === 0;
}

/** Parse a completion strictly (see the module doc). Never throws. */
export function parseCompletion(text: string): ParsedCompletion {
  if (typeof text !== "string" || isBlank(text)) return fail("empty completion");
  const tags: { tag: string; start: number; end: number }[] = [];
  for (const m of text.matchAll(TAG_RE)) {
    tags.push({ tag: m[0], start: m.index!, end: m.index! + m[0].length });
  }
  if (tags.length === 0) return fail("no tags");
  for (let i = 0; i < Math.min(tags.length, EXPECTED.length); i++) {
    if (tags[i].tag !== EXPECTED[i]) {
      return fail(`tag ${i + 1} is ${JSON.stringify(tags[i].tag)}, expected ${EXPECTED[i]}`);
    }
  }
  if (tags.length < EXPECTED.length) {
    return fail(`missing ${EXPECTED[tags.length]} (unclosed or absent block)`);
  }
  if (tags.length > EXPECTED.length) {
    return fail(`extra tag ${JSON.stringify(tags[EXPECTED.length].tag)} after </answer>`);
  }
  const [tOpen, tClose, aOpen, aClose] = tags;
  if (!isBlank(text.slice(0, tOpen.start))) return fail("text before <think>");
  if (!isBlank(text.slice(tClose.end, aOpen.start))) return fail("text between </think> and <answer>");
  if (!isBlank(text.slice(aClose.end))) return fail("text after </answer>");
  const think = text.slice(tOpen.end, tClose.start).trim();
  const answer = text.slice(aOpen.end, aClose.start).trim();
  if (answer.length === 0) return fail("empty answer");
  return { ok: true, think, answer };
}
