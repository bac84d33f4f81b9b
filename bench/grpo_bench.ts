/**
 * The GRPO step broken down by part (lib/train/grpo.ts GrpoStepParts: rollout, rewards, prepare = collate +
 * reference / old log-probs, forward + backward, optimizer) on the bench preset (default small) at the geo-r1
 * stage's P x G (8 x 8) and maxNewTokens, through the real `trainGrpo`: the recipe's step (no reference
 * model, beta 0), the same with a KL reference (beta 0.04: the reference log-probs' cost), and the recipe's
 * step with every row's prefix run in full (no shared prefix). An untrained model runs every rollout to
 * maxNewTokens, the worst case of a step. A last entry prints ms per part and rollout tokens/s (medians).
 * `GEO_R1_BLAS=off` times tfjs-wasm's own matmuls (lib/model/blas.ts).
 * @module
 */
import { benchContext } from "./common.ts";
import { grpoStepper } from "./harness.ts";
import type { GrpoStepParts } from "../lib/train/grpo.ts";
import { median } from "./roofline.ts";

const ctx = await benchContext();
const rows = new Map<string, { parts: GrpoStepParts[]; step: number[]; tokensPerSec: number[] }>();

function grpoBench(name: string, o: { beta?: number; sharePrefix?: boolean }) {
  const stepper = grpoStepper(ctx, o);
  const label = `${name} (P ${stepper.prompts} x G ${stepper.groupSize}, ${stepper.maxNewTokens} tokens)`;
  Deno.bench({
    name: label,
    group: "grpo step",
    baseline: name === "recipe step",
    warmup: 1,
    n: 2,
    async fn(b) {
      b.start();
      const r = await stepper.step();
      b.end();
      const row = rows.get(label) ?? { parts: [], step: [], tokensPerSec: [] };
      if (r.parts) row.parts.push(r.parts);
      row.step.push(r.seconds * 1000);
      row.tokensPerSec.push(r.tokens / r.generateSeconds);
      rows.set(label, row);
    },
  });
}

grpoBench("recipe step", {});
grpoBench("with KL reference", { beta: 0.04 });
grpoBench("without shared prefix", { sharePrefix: false });

Deno.bench({
  name: "grpo step parts (printed)",
  group: "zz-summary",
  n: 1,
  warmup: 0,
  fn() {
    const keys: (keyof GrpoStepParts)[] = ["rollout", "rewards", "prepare", "forwardBackward", "optimizer"];
    const lines = [
      `GRPO step on ${ctx.backend.name}${
        ctx.backend.blas ? ` + ${ctx.backend.blas}` : " (tfjs-wasm matmuls)"
      }, ` +
      `preset ${ctx.preset}; medians, ms`,
      `${"case".padEnd(52)} ${[...keys, "step"].map((k) => k.padStart(15)).join("")} ${
        "rollout tok/s".padStart(14)
      }`,
    ];
    for (const [label, r] of rows) {
      const cells = keys.map((k) => median(r.parts.map((p) => p[k])).toFixed(0).padStart(15));
      lines.push(
        `${label.padEnd(52)} ${cells.join("")}${median(r.step).toFixed(0).padStart(15)} ${
          median(r.tokensPerSec).toFixed(0).padStart(14)
        }`,
      );
    }
    console.log(lines.join("\n"));
  },
});
