import * as tf from "@tensorflow/tfjs";
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { initBackend } from "../lib/backend.ts";
import {
  blasActive,
  coreTypeFor,
  cpuinfoFlags,
  disableBlas,
  enableBlas,
  libgccFlags,
  setBlasThreads,
} from "../lib/model/blas.ts";
import { _ops } from "../lib/model/vlm.ts";

const info = await initBackend("wasm");
const HAVE = info.blas !== null;
const SKIP = HAVE ? "" : "no native BLAS loaded (apt-get install libopenblas0): native-path tests skip";
if (SKIP) console.error(`blas_test: ${SKIP}`);

/** Deterministic pseudo-random tensor (values in [-1, 1)). */
function rand(shape: number[], seed: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 31 - 1;
  }
  return tf.tensor(v, shape);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => a.sub(b).abs().max().dataSync()[0]);
}

/** The products the model runs, with and without transposes, batched (incl. 1-vs-n) and with a bias. */
const CASES: { name: string; a: number[]; b: number[]; ta: boolean; tb: boolean; bias?: number }[] = [
  { name: "dense 2d", a: [37, 64], b: [64, 96], ta: false, tb: false },
  { name: "dense 2d, fused bias", a: [53, 64], b: [64, 192], ta: false, tb: false, bias: 192 },
  { name: "transposed a", a: [64, 37], b: [64, 48], ta: true, tb: false },
  { name: "transposed b", a: [37, 64], b: [48, 64], ta: false, tb: true },
  { name: "both transposed", a: [64, 37], b: [48, 64], ta: true, tb: true },
  { name: "batched attention NT", a: [3, 4, 29, 16], b: [3, 4, 31, 16], ta: false, tb: true },
  { name: "batched, b broadcast", a: [5, 17, 24], b: [1, 24, 9], ta: false, tb: false },
  { name: "batched, a broadcast", a: [1, 17, 24], b: [5, 24, 9], ta: false, tb: false },
  { name: "one row", a: [1, 128], b: [128, 300], ta: false, tb: false, bias: 300 },
  { name: "k = 0", a: [4, 0], b: [0, 3], ta: false, tb: false },
];

function product(c: (typeof CASES)[number]): tf.Tensor {
  const a = rand(c.a, 1), b = rand(c.b, 2);
  if (c.bias !== undefined) {
    const bias = rand([c.bias], 3);
    return tf.fused.matMul({
      a: a as tf.Tensor2D,
      b: b as tf.Tensor2D,
      transposeA: c.ta,
      transposeB: c.tb,
      bias,
    });
  }
  return tf.matMul(a, b, c.ta, c.tb);
}

Deno.test({
  name: "native BLAS matmuls equal tfjs-wasm's within float rounding, for every case the kernels cover",
  ignore: !HAVE,
  fn() {
    for (const c of CASES) {
      disableBlas();
      // tfjs-wasm's XNNPACK refuses k = 0 (it logs a status and returns zeros): compare with zeros there.
      const want = c.a[c.a.length - 1] === 0 ? tf.zeros([c.a[0], c.b[1]]) : product(c);
      enableBlas();
      assert(blasActive());
      const got = product(c);
      assertEquals(got.shape, want.shape, c.name);
      const d = maxAbsDiff(got, want);
      assert(d <= 1e-5 * Math.max(1, Math.sqrt(c.a[c.a.length - 1])), `${c.name}: max |diff| ${d}`);
      tf.dispose([want, got]);
    }
  },
});

Deno.test({
  name: "native BLAS results repeat bitwise; the model's main products do not depend on the thread count",
  ignore: !HAVE,
  fn() {
    enableBlas();
    const shapes: [number[], number[], boolean, boolean][] = [
      [[7168, 128], [128, 384], false, false], // QKV of a 32-row x 224-token micro-batch
      [[7168, 512], [512, 128], false, false],
      [[7168, 128], [7168, 384], true, false], // a weight gradient (long k)
      [[128, 224, 32], [128, 224, 32], false, true], // attention scores
    ];
    // Long inner dimension, small output: summed in another order by one thread than by several, but
    // the same at a fixed count, call after call.
    const longK: [number[], number[], boolean][] = [[[2000, 128], [2000, 60], true], [[512, 2000], [
      2000,
      128,
    ], false]];
    const threads = Math.max(2, navigator.hardwareConcurrency || 2);
    for (const [sa, sb, ta, tb] of shapes) {
      const a = rand(sa, 11), b = rand(sb, 12);
      setBlasThreads(1);
      const one = tf.matMul(a, b, ta, tb).dataSync();
      setBlasThreads(threads);
      const runs = Array.from({ length: 3 }, () => tf.matMul(a, b, ta, tb).dataSync());
      for (const r of runs) {
        assertEquals(r.length, one.length);
        let same = true;
        for (let i = 0; i < r.length && same; i++) same = r[i] === one[i];
        assert(same, `${sa} x ${sb}: ${threads} threads differ from 1 thread or between runs`);
      }
      tf.dispose([a, b]);
    }
    for (const [sa, sb, ta] of longK) {
      const a = rand(sa, 13), b = rand(sb, 14);
      for (const n of [1, threads]) {
        setBlasThreads(n);
        const first = tf.matMul(a, b, ta, false).dataSync();
        const again = tf.matMul(a, b, ta, false).dataSync();
        assert(first.every((x, i) => x === again[i]), `${sa} x ${sb}: ${n} threads differ between calls`);
      }
      tf.dispose([a, b]);
    }
  },
});

Deno.test({
  name:
    "the model's products and gradients on native BLAS (transposes as flags) equal tfjs-wasm's within 1e-5",
  ignore: !HAVE,
  fn() {
    const x = rand([40, 32], 5) as tf.Tensor2D, w = rand([32, 24], 6) as tf.Tensor2D, bias = rand([24], 7);
    const q = rand([2, 3, 10, 8], 8), k = rand([2, 3, 12, 8], 9), e = rand([50, 32], 10) as tf.Tensor2D;
    const grads = () => {
      const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        _ops.linear(a as tf.Tensor2D, b as tf.Tensor2D, c).square().sum()
      )([x, w, bias]);
      const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor) => _ops.bmmNT(a, b).square().sum())([q, k]);
      // Attention weights [2, 3, 10, 12] times values [2, 3, 12, 8].
      const g3 = tf.grads((a: tf.Tensor, b: tf.Tensor) => _ops.bmm(a, b).square().sum())([
        tf.softmax(_ops.bmmNT(q, k)),
        k,
      ]);
      const g4 = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        _ops.matMulNT2d(a as tf.Tensor2D, b as tf.Tensor2D).square().sum()
      )([x, e]);
      return [...g1, ...g2, ...g3, ...g4];
    };
    disableBlas();
    const want = grads();
    enableBlas();
    const got = grads();
    want.forEach((t, i) => {
      const scale = Math.max(1, tf.tidy(() => t.abs().max().dataSync()[0]));
      assert(maxAbsDiff(got[i], t) <= 1e-5 * scale, `gradient ${i}: ${maxAbsDiff(got[i], t)}`);
    });
    tf.dispose([...want, ...got]);
  },
});

Deno.test({
  name: "on native BLAS the model's products and their gradients run no Transpose kernel",
  ignore: !HAVE,
  async fn() {
    enableBlas();
    const x = rand([40, 32], 5) as tf.Tensor2D, w = rand([32, 24], 6) as tf.Tensor2D, bias = rand([24], 7);
    const q = rand([2, 3, 10, 8], 8), k = rand([2, 3, 12, 8], 9), e = rand([50, 32], 10) as tf.Tensor2D;
    const info = await tf.profile(() => {
      const loss = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) => {
        const h = _ops.linear(a as tf.Tensor2D, b as tf.Tensor2D, c);
        const p = tf.softmax(_ops.bmmNT(d, d.mul(0.5)));
        return _ops.matMulNT2d(h, b as tf.Tensor2D).sum().add(_ops.bmm(p, d).square().sum());
      };
      tf.dispose(tf.grads(loss)([x, w, bias, q]));
    });
    const names = new Set(info.kernels.map((kn) => kn.name));
    assert(names.has("BatchMatMul") || names.has("_FusedMatMul"), `no matmul ran: ${[...names]}`);
    assert(!names.has("Transpose"), `a Transpose kernel ran: ${[...names]}`);
    tf.dispose([x, w, bias, q, k, e]);
  },
});

Deno.test("coreTypeFor() names the OpenBLAS kernels for the instruction sets the CPU supports", () => {
  const avx512 = "flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl\n";
  assertEquals(coreTypeFor(cpuinfoFlags(`processor\t: 0\n${avx512}`)), "SkylakeX");
  assertEquals(coreTypeFor(cpuinfoFlags("flags\t\t: fpu sse2 avx avx2 fma\n")), "Haswell");
  assertEquals(coreTypeFor(cpuinfoFlags("flags\t\t: fpu sse2 avx\n")), null);
  assertEquals(coreTypeFor(cpuinfoFlags("Features\t: fp asimd evtstrm\n")), null);
  // libgcc's feature word: bits 9 avx, 10 avx2, 14 fma, 15 avx512f, 20-23 avx512vl/bw/dq/cd.
  const bits = (...b: number[]) => b.reduce((w, i) => (w | (1 << i)) >>> 0, 0);
  assertEquals(coreTypeFor(libgccFlags(bits(9, 10, 14, 15, 20, 21, 22, 23))), "SkylakeX");
  assertEquals(coreTypeFor(libgccFlags(bits(9, 10, 14, 15))), "Haswell");
  assertEquals(coreTypeFor(libgccFlags(bits(9, 14))), null);
});

Deno.test("without a loadable BLAS the wasm backend says so in one line and keeps tfjs-wasm's matmuls", async () => {
  const root = new URL("../", import.meta.url);
  const code = `import { initBackend } from "${new URL("lib/backend.ts", root).href}";
import * as tf from "@tensorflow/tfjs";
const info = await initBackend("wasm");
const y = tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync();
console.log(JSON.stringify({ blas: info.blas, y: Array.from(y) }));`;
  const dir = await Deno.makeTempDir({ prefix: "geo-r1-blas-" });
  try {
    const script = join(dir, "probe.ts");
    await Deno.writeTextFile(script, code);
    const run = async (env: Record<string, string>) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--config", new URL("deno.json", root).pathname, script],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, err);
      return { res: JSON.parse(new TextDecoder().decode(out.stdout)), err: err.trim() };
    };
    const missing = await run({ GEO_R1_BLAS: join(dir, "libnothere.so") });
    assertEquals(missing.res, { blas: null, y: [3, 3, 3, 3] });
    const lines = missing.err.split("\n").filter((l) => l.includes("native BLAS"));
    assertEquals(lines.length, 1, missing.err);
    assert(lines[0].includes("libnothere.so") && lines[0].includes("matmuls run on tfjs-wasm"), lines[0]);
    const off = await run({ GEO_R1_BLAS: "off" });
    assertEquals(off.res, { blas: null, y: [3, 3, 3, 3] });
    assert(!off.err.includes("native BLAS"), off.err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
