/** The cluster bootstrap of lib/eval/stats.ts, against cases worked out by hand. */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { bootstrapCi, clusterBootstrapCi, clusterCount, groupByCluster } from "../lib/eval/stats.ts";

Deno.test("clusterBootstrapCi() equals bootstrapCi() draw for draw when every example is its own cluster", () => {
  const values = [0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 1, 1];
  const clusters = values.map((_, i) => `cell${i}`);
  for (const seed of [0, 7, 123]) {
    assertEquals(
      clusterBootstrapCi(values, clusters, { resamples: 300, seed }),
      bootstrapCi(values, { resamples: 300, seed }),
    );
  }
});

Deno.test("clusterBootstrapCi() of one cluster is zero-width at the statistic of all values", () => {
  const ci = clusterBootstrapCi([0, 1, 1, 0], ["a", "a", "a", "a"], { resamples: 200, seed: 3 });
  assertEquals(ci, [0.5, 0.5]);
});

Deno.test("clusterBootstrapCi() resamples whole clusters: values [1, 1 | 0] give means 1, 2/3 or 0", () => {
  // Two clusters a = [1, 1] and b = [0]. A resample draws 2 clusters: aa -> mean 1 (p 1/4), ab or ba ->
  // (1 + 1 + 0) / 3 = 2/3 (p 1/2), bb -> 0 (p 1/4). The 95% interval spans the two extremes; the 40-60%
  // interval lies inside the middle mass, so both of its ends are 2/3.
  const values = [1, 1, 0];
  const clusters = ["a", "a", "b"];
  assertEquals(clusterBootstrapCi(values, clusters, { resamples: 4000, seed: 1 }), [0, 1]);
  const [lo, hi] = clusterBootstrapCi(values, clusters, { resamples: 4000, seed: 1, alpha: 0.8 });
  assert(Math.abs(lo - 2 / 3) < 1e-12 && Math.abs(hi - 2 / 3) < 1e-12, `${lo}..${hi}`);
});

Deno.test("clusterBootstrapCi() is wider than the example bootstrap when whole cells agree", () => {
  // 10 cells of 10 identical outcomes: really 10 draws, not 100.
  const values: number[] = [];
  const clusters: string[] = [];
  for (let c = 0; c < 10; c++) {
    for (let i = 0; i < 10; i++) {
      values.push(c % 2);
      clusters.push(`c${c}`);
    }
  }
  const [clo, chi] = clusterBootstrapCi(values, clusters, { resamples: 2000, seed: 5 });
  const [lo, hi] = bootstrapCi(values, { resamples: 2000, seed: 5 });
  assert(chi - clo > 2 * (hi - lo), `cluster ${clo}..${chi} vs example ${lo}..${hi}`);
});

Deno.test("clusterBootstrapCi() is deterministic in its seed, takes any statistic, and refuses bad input", () => {
  const values = [3, 1, 4, 1, 5, 9, 2, 6];
  const clusters = [1, 1, 2, 2, 3, 3, 4, 4];
  const a = clusterBootstrapCi(values, clusters, { resamples: 100, seed: 9 });
  assertEquals(clusterBootstrapCi(values, clusters, { resamples: 100, seed: 9 }), a);
  const max = clusterBootstrapCi(values, clusters, {
    resamples: 100,
    seed: 9,
    statistic: (s) => Math.max(...s),
  });
  assert(max[0] >= 4 && max[1] === 9, `${max}`);
  assertEquals(clusterBootstrapCi([], [], {}), [NaN, NaN]);
  assertThrows(() => clusterBootstrapCi([1, 2], ["a"]), /2 values but 1 cluster keys/);
  assertThrows(() => clusterBootstrapCi([1], ["a"], { resamples: 0 }), /resamples must be >= 1/);
});

Deno.test("groupByCluster() keeps first-appearance order; clusterCount() counts distinct keys", () => {
  const g = groupByCluster([1, 2, 3, 4], ["b", "a", "b", "c"]);
  assertEquals(g.map((x) => Array.from(x)), [[1, 3], [2], [4]]);
  assertEquals(clusterCount(["b", "a", "b", "c"]), 3);
});
