/**
 * The geo-r1 tokenizer: word level over the closed vocabulary the data engine can produce, with a UTF-8 byte
 * fallback so that every string round-trips (`decode(encode(s)) === s`, for any well-formed Unicode text).
 *
 * Vocabulary layout (fixed by code, see {@link lexiconWords}):
 * - ids 0..7: `<pad>`, `<bos>`, `<eos>`, `<unk>`, `<think>`, `</think>`, `<answer>`, `</answer>`
 * - ids 8..263: the 256 byte values (printable ASCII bytes decode to themselves; other bytes are pieces of
 *   UTF-8 sequences)
 * - then, for every lexicon word `w` in sorted order, the pair `"w"` and `" w"`: the leading-space convention
 *   (GPT's "Ġword") makes a word and the space before it ONE token, so completions stay short in tokens.
 *
 * Encoding pre-splits the text into pieces: a special tag; an optional single space followed by a
 * hyphenated lexicon word ("north-south"), else by a run of ASCII letters; or one character. A letter piece found in the vocabulary is one token; `" w"` with `w`
 * known but `" w"` unknown cannot happen (both forms exist), so an unknown letter piece falls back to its
 * bytes. Every other character is emitted as its UTF-8 bytes. Decoding concatenates token strings (bytes
 * are reassembled before UTF-8 decoding); `<pad>`, `<bos>`, `<eos>` and `<unk>` decode to nothing.
 * @module
 */
import { UserError } from "../errors.ts";
import type { SpecialIds, Tokenizer } from "./types.ts";
import { lexiconWords } from "./lexicon.ts";

/** Identifies the tokenizer family in its JSON. */
export const TOKENIZER_TYPE = "geo-r1-word-v1";

/** Special token strings, in id order. */
export const SPECIAL_TOKENS = [
  "<pad>",
  "<bos>",
  "<eos>",
  "<unk>",
  "<think>",
  "</think>",
  "<answer>",
  "</answer>",
] as const;

const BYTE_BASE = SPECIAL_TOKENS.length;
const WORD_BASE = BYTE_BASE + 256;

/** The JSON form saved next to checkpoints. */
export interface TokenizerJSON {
  type: typeof TOKENIZER_TYPE;
  vocabSize: number;
  /** Word tokens only (ids from {@link WORD_BASE}); specials and bytes are implicit. */
  words: string[];
}

/** The concrete tokenizer, with a few helpers beyond the contract. */
export interface GeoTokenizer extends Tokenizer {
  /** Token string of an id, for display (`<0x0a>` style for non-printable bytes). */
  tokenString(id: number): string;
  /** The word tokens (leading-space forms included), in id order from the first word id. */
  readonly words: readonly string[];
  /** Number of tokens of `text` (same as `encode(text).length`). */
  count(text: string): number;
  toJSON(): TokenizerJSON;
}

const TAG_RE = /^(<think>|<\/think>|<answer>|<\/answer>)/;
const WORD_RE = /^ ?[A-Za-z]+/;
const HYPHEN_WORD_RE = /^ ?[A-Za-z]+(?:-[A-Za-z]+)+/;
const enc = new TextEncoder();

function buildWords(lexicon: readonly string[]): string[] {
  const uniq = [...new Set(lexicon.filter((w) => /^[A-Za-z]+(-[A-Za-z]+)*$/.test(w)))].sort();
  const out: string[] = [];
  for (const w of uniq) out.push(w, " " + w);
  return out;
}

class WordTokenizer implements GeoTokenizer {
  readonly vocabSize: number;
  readonly special: SpecialIds = {
    pad: 0,
    bos: 1,
    eos: 2,
    unk: 3,
    thinkOpen: 4,
    thinkClose: 5,
    answerOpen: 6,
    answerClose: 7,
  };
  readonly words: readonly string[];
  #index = new Map<string, number>();
  #wordBytes: Uint8Array[];

  constructor(words: string[]) {
    this.words = Object.freeze(words.slice());
    this.vocabSize = WORD_BASE + words.length;
    words.forEach((w, i) => this.#index.set(w, WORD_BASE + i));
    this.#wordBytes = words.map((w) => enc.encode(w));
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    let i = 0;
    const n = text.length;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 60 /* < */) {
        const m = TAG_RE.exec(text.slice(i, i + 9));
        if (m) {
          ids.push(BYTE_BASE - 4 + SPECIAL_TOKENS.slice(4).indexOf(m[1] as never));
          i += m[1].length;
          continue;
        }
      }
      if (c === 32 || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)) {
        const h = HYPHEN_WORD_RE.exec(text.slice(i, i + 64));
        if (h) {
          const id = this.#index.get(h[0]);
          if (id !== undefined) {
            ids.push(id);
            i += h[0].length;
            continue;
          }
        }
        const m = WORD_RE.exec(text.slice(i, i + 64));
        if (m && m[0].length < 64) {
          const id = this.#index.get(m[0]);
          if (id !== undefined) {
            ids.push(id);
            i += m[0].length;
            continue;
          }
          if (m[0] !== " ") {
            // Unknown word: a space token (if any) then bytes of the letters.
            for (const b of enc.encode(m[0])) ids.push(BYTE_BASE + b);
            i += m[0].length;
            continue;
          }
        }
      }
      // One code point as UTF-8 bytes.
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of enc.encode(ch)) ids.push(BYTE_BASE + b);
      i += ch.length;
    }
    return ids;
  }

  count(text: string): number {
    return this.encode(text).length;
  }

  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      if (id >= WORD_BASE && id < this.vocabSize) {
        for (const b of this.#wordBytes[id - WORD_BASE]) bytes.push(b);
      } else if (id >= BYTE_BASE && id < WORD_BASE) {
        bytes.push(id - BYTE_BASE);
      } else if (id >= 4 && id < BYTE_BASE) {
        for (const b of enc.encode(SPECIAL_TOKENS[id])) bytes.push(b);
      }
      // pad, bos, eos, unk and out-of-range ids decode to nothing.
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }

  tokenString(id: number): string {
    if (id < 0 || id >= this.vocabSize) return `<out-of-range:${id}>`;
    if (id < BYTE_BASE) return SPECIAL_TOKENS[id];
    if (id < WORD_BASE) {
      const b = id - BYTE_BASE;
      return b >= 32 && b < 127 ? String.fromCharCode(b) : `<0x${b.toString(16).padStart(2, "0")}>`;
    }
    return this.words[id - WORD_BASE];
  }

  toJSON(): TokenizerJSON {
    return { type: TOKENIZER_TYPE, vocabSize: this.vocabSize, words: this.words.slice() };
  }
}

let cached: GeoTokenizer | null = null;

/** The tokenizer of this code version (vocabulary from {@link lexiconWords}); memoised. */
export function createTokenizer(): GeoTokenizer {
  if (!cached) cached = new WordTokenizer(buildWords(lexiconWords()));
  return cached;
}

/**
 * Restore a tokenizer from its JSON. The vocabulary is fixed by code, so the JSON must equal this code's:
 * a checkpoint trained with another vocabulary is rejected with a UserError naming the first difference.
 */
export function tokenizerFromJSON(json: unknown): GeoTokenizer {
  const j = json as Partial<TokenizerJSON> | null;
  if (!j || typeof j !== "object" || j.type !== TOKENIZER_TYPE || !Array.isArray(j.words)) {
    throw new UserError(
      `tokenizer JSON: expected {type: "${TOKENIZER_TYPE}", words: [...]}, got type ${
        JSON.stringify((j as { type?: unknown } | null)?.type)
      }`,
    );
  }
  const cur = createTokenizer();
  const a = j.words;
  const b = cur.words;
  if (a.length !== b.length || j.vocabSize !== cur.vocabSize) {
    throw new UserError(
      `tokenizer JSON: vocabulary mismatch: saved vocabSize ${j.vocabSize} (${a.length} words), this code has ` +
        `${cur.vocabSize} (${b.length} words); the checkpoint was made with another version of lib/data`,
    );
  }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      throw new UserError(
        `tokenizer JSON: vocabulary mismatch at id ${WORD_BASE + i}: saved ${
          JSON.stringify(a[i])
        }, this code ` +
          `has ${JSON.stringify(b[i])}; the checkpoint was made with another version of lib/data`,
      );
    }
  }
  return cur;
}
