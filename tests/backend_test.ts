import * as tf from "@tensorflow/tfjs";
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { initBackend, tfjsVersion } from "../lib/backend.ts";
import { UserError } from "../lib/errors.ts";

Deno.test("initBackend('wasm') runs tfjs on wasm", async () => {
  const info = await initBackend("wasm");
  const { blas, ...rest } = info;
  assertEquals(rest, { name: "wasm", adapter: null, isFallbackAdapter: null });
  // The native matmuls (lib/model/blas.ts) where a BLAS loads; tests/blas_test.ts covers them.
  assert(blas === null || /thread/.test(blas), `blas: ${blas}`);
  assertEquals(tf.getBackend(), "wasm");
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])));
  assertEquals(Array.from(await y.data()), [17, 39]);
  y.dispose();
  assertEquals(tfjsVersion(), "4.22.0");
});

Deno.test("initBackend('auto') picks webgpu only on a real adapter, else wasm", async () => {
  // In a subprocess with a deadline: the WebGPU probe talks to native drivers (e.g. llvmpipe), and a driver
  // problem must fail this test, not hang or crash the whole test run.
  const root = new URL("..", import.meta.url);
  const code = `import { initBackend, probeWebGpu } from "${new URL("lib/backend.ts", root).href}";
const p = await probeWebGpu();
const info = await initBackend("auto");
console.log(JSON.stringify({ probe: { adapter: !!p.adapter, description: p.description, isFallback: p.isFallback }, info }));`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: root.pathname,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  const { probe, info } = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").pop()!);
  if (probe.adapter && probe.isFallback === false) assertEquals(info.name, "webgpu");
  else assertEquals(info.name, "wasm");
  assertEquals(info.isFallbackAdapter, probe.isFallback);
  assertEquals(info.adapter, probe.description);
});

Deno.test("initBackend('cpu') and a clear error for 'tensorflow' without tfjs-node-gpu", async () => {
  assertEquals((await initBackend("cpu")).name, "cpu");
  assertEquals(tf.getBackend(), "cpu");
  await assertRejects(initBackend("tensorflow"), (e: unknown) => {
    assert(e instanceof UserError);
    assert(
      e.message.startsWith("--backend tensorflow needs @tensorflow/tfjs-node-gpu, which is not installed"),
    );
    return true;
  });
  await initBackend("wasm");
});
