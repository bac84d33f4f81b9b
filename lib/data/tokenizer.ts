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
 * - with coordinate tokens (`coords`, type `geo-r1-word-v2`), then the whole-degree numbers
 *   {@link COORD_MIN}..{@link COORD_MAX} as `"n"` and `" n"` (`"-12"`, `" 130"`), then the two-digit fractions
 *   `".00"`..`".99"`: the answer `-12, 130` is 3 tokens instead of 8 bytes, `12.34, -45.67` 5 instead of 13,
 *   and each whole degree has an embedding of its own. Word ids are the same with and without them.
 *
 * Encoding pre-splits the text into pieces: a special tag; an optional single space followed by a
 * hyphenated lexicon word ("north-south"), else by a run of ASCII letters; with coordinate tokens, an
 * optional space, an optional `-` and a run of digits, or a `.` and exactly two digits; or one character.
 * A letter piece found in the vocabulary is one token; `" w"` with `w` known but `" w"` unknown cannot
 * happen (both forms exist), so an unknown letter piece falls back to its bytes. A number piece is one token
 * when it is a canonical whole degree in range (no leading zero, no `-0`), else its bytes (`"007"`, `" 181"`,
 * `"1234"`). Every other character is emitted as its UTF-8 bytes. Decoding concatenates token strings
 * (bytes are reassembled before UTF-8 decoding); `<pad>`, `<bos>`, `<eos>` and `<unk>` decode to nothing.
 * @module
 */
import { UserError } from "../errors.ts";
import type { SpecialIds, Tokenizer } from "./types.ts";
import { lexiconWords } from "./lexicon.ts";

/** Identifies the tokenizer family in its JSON: words and bytes only. */
export const TOKENIZER_TYPE = "geo-r1-word-v1";
/** The family with coordinate tokens (whole degrees and two-digit fractions after the words). */
export const COORD_TOKENIZER_TYPE = "geo-r1-word-v2";
/** Range of the whole-degree tokens: every latitude and longitude. */
export const COORD_MIN = -180;
export const COORD_MAX = 180;

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
  type: typeof TOKENIZER_TYPE | typeof COORD_TOKENIZER_TYPE;
  vocabSize: number;
  /** Word tokens only (ids from {@link WORD_BASE}); specials and bytes are implicit. */
  words: string[];
  /** Coordinate tokens after the words (type `geo-r1-word-v2` only). */
  coords?: string[];
}

/** Options of {@link createTokenizer}. */
export interface TokenizerOptions {
  /** Whole-degree and fraction tokens (spec `data.coordTokens`). Default false. */
  coords?: boolean;
}

/** The concrete tokenizer, with a few helpers beyond the contract. */
export interface GeoTokenizer extends Tokenizer {
  /** Token string of an id, for display (`<0x0a>` style for non-printable bytes). */
  tokenString(id: number): string;
  /** The word tokens (leading-space forms included), in id order from the first word id. */
  readonly words: readonly string[];
  /** The coordinate tokens, in id order after the words (empty without them). */
  readonly coords: readonly string[];
  /** Number of tokens of `text` (same as `encode(text).length`). */
  count(text: string): number;
  toJSON(): TokenizerJSON;
}

const TAG_RE = /^(<think>|<\/think>|<answer>|<\/answer>)/;
const WORD_RE = /^ ?[A-Za-z]+/;
const HYPHEN_WORD_RE = /^ ?[A-Za-z]+(?:-[A-Za-z]+)+/;
const NUMBER_RE = / ?-?[0-9]+/y;
const FRACTION_RE = /\.[0-9]{2}(?![0-9])/y;
const enc = new TextEncoder();

/** The coordinate tokens in id order: `"n"`, `" n"` for each whole degree, then `".00"`..`".99"`. */
export function coordTokens(): string[] {
  const out: string[] = [];
  for (let n = COORD_MIN; n <= COORD_MAX; n++) out.push(String(n), " " + n);
  for (let f = 0; f < 100; f++) out.push("." + String(f).padStart(2, "0"));
  return out;
}

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
  readonly coords: readonly string[];
  #index = new Map<string, number>();
  #numberIndex = new Map<string, number>();
  #wordBytes: Uint8Array[];

  constructor(words: string[], coords: string[]) {
    this.words = Object.freeze(words.slice());
    this.coords = Object.freeze(coords.slice());
    this.vocabSize = WORD_BASE + words.length + coords.length;
    words.forEach((w, i) => this.#index.set(w, WORD_BASE + i));
    coords.forEach((c, i) => this.#numberIndex.set(c, WORD_BASE + words.length + i));
    this.#wordBytes = [...words, ...coords].map((w) => enc.encode(w));
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
      if (
        this.coords.length > 0 && (c === 32 || c === 45 /* - */ || c === 46 /* . */ || (c >= 48 && c <= 57))
      ) {
        const re = c === 46 ? FRACTION_RE : NUMBER_RE;
        re.lastIndex = i;
        const m = re.exec(text);
        if (m) {
          // A number piece is one token or all bytes, so a digit run is never split into two numbers.
          const id = this.#numberIndex.get(m[0]);
          if (id !== undefined) ids.push(id);
          else for (let k = 0; k < m[0].length; k++) ids.push(BYTE_BASE + m[0].charCodeAt(k));
          i += m[0].length;
          continue;
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
    const k = id - WORD_BASE;
    return k < this.words.length ? this.words[k] : this.coords[k - this.words.length];
  }

  toJSON(): TokenizerJSON {
    if (this.coords.length === 0) {
      return { type: TOKENIZER_TYPE, vocabSize: this.vocabSize, words: this.words.slice() };
    }
    return {
      type: COORD_TOKENIZER_TYPE,
      vocabSize: this.vocabSize,
      words: this.words.slice(),
      coords: this.coords.slice(),
    };
  }
}

const cached = new Map<boolean, GeoTokenizer>();

/**
 * The tokenizer of this code version (vocabulary from {@link lexiconWords}, plus the coordinate tokens with
 * `opts.coords`); memoised per variant.
 */
export function createTokenizer(opts: TokenizerOptions = {}): GeoTokenizer {
  const coords = opts.coords === true;
  let t = cached.get(coords);
  if (!t) {
    t = new WordTokenizer(buildWords(lexiconWords()), coords ? coordTokens() : []);
    cached.set(coords, t);
  }
  return t;
}

/**
 * Restore a tokenizer from its JSON: `geo-r1-word-v1` (words and bytes) or `geo-r1-word-v2` (with the
 * coordinate tokens). The vocabulary is fixed by code, so the JSON must equal this code's variant of its
 * type: a checkpoint trained with another vocabulary is rejected with a UserError naming the first difference.
 */
export function tokenizerFromJSON(json: unknown): GeoTokenizer {
  const j = json as Partial<TokenizerJSON> | null;
  const type = (j as { type?: unknown } | null)?.type;
  if (
    !j || typeof j !== "object" || (type !== TOKENIZER_TYPE && type !== COORD_TOKENIZER_TYPE) ||
    !Array.isArray(j.words) || (type === COORD_TOKENIZER_TYPE && !Array.isArray(j.coords))
  ) {
    throw new UserError(
      `tokenizer JSON: expected {type: "${TOKENIZER_TYPE}", words: [...]} or {type: "${COORD_TOKENIZER_TYPE}", ` +
        `words: [...], coords: [...]}, got type ${JSON.stringify(type)}`,
    );
  }
  const cur = createTokenizer({ coords: type === COORD_TOKENIZER_TYPE });
  if (j.coords !== undefined && JSON.stringify(j.coords) !== JSON.stringify(cur.coords)) {
    throw new UserError(
      `tokenizer JSON: coordinate tokens differ from this code's (${cur.coords.length} tokens, ` +
        `${COORD_MIN}..${COORD_MAX} and .00-.99); the checkpoint was made with another version of lib/data`,
    );
  }
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
