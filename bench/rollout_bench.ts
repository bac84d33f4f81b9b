/**
 * Rollout throughput of `VLM.generate` on real pairing prompts (bench preset, default small):
 * - by batch size (rows 1, 8, 64 = prompts x G, G = min(rows, 8)) and completion length (32, 128);
 * - KV cache vs full recompute at 128 tokens (8 rows: one group);
 * - shared prefix (8 prompts x G 8, prefix encoded once per prompt) vs 64 separate prompts, 32 tokens.
 * No stop id: every row generates exactly the completion length. A last entry prints tokens/s and % of
 * the matmul roofline for each case.
 * @module
 */
import { benchContext, printRooflineTable, recordThroughput } from "./common.ts";
import { type RolloutCase, rolloutFlopsPerToken } from "./harness.ts";
import { collatePrompts } from "../lib/model/collate.ts";
import type { ModelInput } from "../lib/model/types.ts";

const ctx = await benchContext();

function rolloutBench(
  name: string,
  group: string,
  c: RolloutCase,
  opts: { n?: number; baseline?: boolean } = {},
) {
  const G = c.groupSize ?? 1;
  const shared = c.sharedPrefix ?? true;
  const P = c.rows / G;
  let prompt: ModelInput | null = null;
  Deno.bench({
    name,
    group,
    baseline: opts.baseline,
    warmup: 1,
    n: opts.n ?? 3,
    async fn(b) {
      if (!prompt) {
        const base = ctx.examples(P);
        const exs = shared ? base : base.flatMap((e) => Array.from({ length: G }, () => e));
        prompt = collatePrompts(exs, ctx.tokenizer, ctx.cfg);
      }
      b.start();
      const t0 = performance.now();
      await ctx.model.generate(prompt, {
        groupSize: shared ? G : 1,
        maxNewTokens: c.newTokens,
        temperature: 1,
        topP: 1,
        seed: 1234,
        stopIds: [],
        useCache: c.useCache ?? true,
      });
      const ms = performance.now() - t0;
      b.end();
      recordThroughput(name, c.rows * c.newTokens, rolloutFlopsPerToken(ctx, c.newTokens), ms);
    },
  });
}

for (const N of [32, 128]) {
  for (const rows of [1, 8, 64]) {
    rolloutBench(`rollout rows ${rows} x ${N} tokens`, `rollout ${N} tokens`, {
      rows,
      groupSize: Math.min(rows, 8),
      newTokens: N,
    }, { baseline: rows === 64 });
  }
}
rolloutBench("kv cache, 8 rows x 128 tokens", "kv cache vs recompute", {
  rows: 8,
  groupSize: 8,
  newTokens: 128,
}, {
  baseline: true,
});
rolloutBench("recompute, 8 rows x 128 tokens", "kv cache vs recompute", {
  rows: 8,
  groupSize: 8,
  newTokens: 128,
  useCache: false,
}, { n: 1 });
rolloutBench("shared prefix, 8 prompts x G 8, 32 tokens", "shared prefix", {
  rows: 64,
  groupSize: 8,
  newTokens: 32,
}, {
  baseline: true,
});
rolloutBench("separate prefixes, 64 prompts, 32 tokens", "shared prefix", {
  rows: 64,
  groupSize: 8,
  newTokens: 32,
  sharedPrefix: false,
});

Deno.bench({
  name: "roofline table (printed)",
  group: "zz-summary",
  n: 1,
  warmup: 0,
  fn: printRooflineTable,
});
