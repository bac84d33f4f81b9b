/**
 * Entry point of a model replica worker (see lib/train/replicas.ts). Requests are handled one at a time, in
 * arrival order; each reply carries the request id and either a result or an error message.
 * @module
 */
import * as tf from "@tensorflow/tfjs";
import { initBackend } from "../backend.ts";
import type { BackendName } from "../spec/types.ts";
import { TfVLM } from "../model/vlm.ts";
import { disposeInput } from "../model/collate.ts";
import { shardLoss } from "./supervised.ts";
import { chunkGradients } from "./grpo_chunk.ts";
import { hostGrads, type ReplicaRequest, unpackInput, unpackTensor } from "./replicas.ts";
import type { GradResult, HostWeights } from "./replicas.ts";

let model: TfVLM | null = null;
/** The frozen reference of the running GRPO stage (`reference` request), loaded into `model` when needed. */
let reference: HostWeights | null = null;

function ready(): TfVLM {
  if (!model) throw new Error("replica used before init");
  return model;
}

function load(weights: HostWeights): TfVLM {
  const m = ready();
  m.setWeights(new Map(weights));
  return m;
}

function trainVars(m: TfVLM, train: string[]): tf.Variable[] {
  const keep = new Set(train);
  const vars = m.namedParams().filter(([k]) => keep.has(k)).map(([, v]) => v);
  if (vars.length !== keep.size) throw new Error("replica: unknown trainable parameter names");
  return vars;
}

async function handle(req: ReplicaRequest): Promise<unknown> {
  switch (req.op) {
    case "init": {
      await initBackend(req.backend as BackendName);
      model?.dispose();
      model = new TfVLM(req.config, { trainable: true });
      return true;
    }
    case "supervised": {
      const m = load(req.weights);
      const vars = trainVars(m, req.train);
      const input = unpackInput(req.input);
      const lossMask = unpackTensor(req.lossMask) as tf.Tensor2D;
      const scalars: Record<string, number> = {};
      try {
        const { value, grads } = tf.variableGrads(() => {
          const r = shardLoss(m, { input, lossMask }, req.cue, req.cueWeight, req.norm);
          scalars.ce = r.ce.dataSync()[0];
          scalars.cue = r.cue.dataSync()[0];
          return r.total;
        }, vars);
        const out: GradResult = { grads: hostGrads(grads, vars), value: value.dataSync()[0], scalars };
        value.dispose();
        for (const k in grads) grads[k].dispose();
        return out;
      } finally {
        disposeInput(input);
        lossMask.dispose();
      }
    }
    case "reference": {
      reference = req.weights;
      return true;
    }
    case "grpo": {
      const c = req.chunk;
      const t = {
        input: unpackInput(c.input),
        lossMask: unpackTensor(c.lossMask) as tf.Tensor2D,
        fullMask: unpackTensor(c.fullMask) as tf.Tensor2D,
        advantages: tf.tensor1d(c.advantages),
        refLogp: c.refLogp ? (unpackTensor(c.refLogp) as tf.Tensor2D) : null,
        oldLogp: c.oldLogp ? (unpackTensor(c.oldLogp) as tf.Tensor2D) : null,
      };
      try {
        if (req.reference) {
          if (!reference) {
            throw new Error("replica: reference log-probs requested before a reference was set");
          }
          const r = load(reference);
          const { temperature, groups } = req.params;
          t.refLogp = tf.tidy(() => r.tokenLogProbs(t.input, false, temperature, groups ?? undefined));
        }
        const m = load(req.weights);
        const vars = trainVars(m, req.train);
        const { value, stats, grads } = chunkGradients(m, vars, t, req.params);
        const out: GradResult = { grads: hostGrads(grads, vars), value, scalars: stats };
        for (const k in grads) grads[k].dispose();
        return out;
      } finally {
        disposeInput(t.input);
        for (const x of [t.lossMask, t.fullMask, t.advantages, t.refLogp, t.oldLogp]) x?.dispose();
      }
    }
    case "generate": {
      const m = load(req.weights);
      const prompt = unpackInput(req.prompt);
      try {
        return await m.generate(prompt, req.opts);
      } finally {
        disposeInput(prompt);
      }
    }
  }
}

/** The worker global (typed here, not with the deno.worker lib, which would clash with lib/'s window types). */
const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent) => void) | null;
  postMessage(message: unknown): void;
};

let queue: Promise<void> = Promise.resolve();
scope.onmessage = (e: MessageEvent) => {
  const { id, req } = e.data as { id: number; req: ReplicaRequest };
  queue = queue.then(async () => {
    try {
      scope.postMessage({ id, result: await handle(req) });
    } catch (err) {
      const msg = err instanceof Error ? `${err.message}${err.stack ? `\n${err.stack}` : ""}` : String(err);
      scope.postMessage({ id, error: msg });
    }
  });
};
