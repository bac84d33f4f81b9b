/** Geolocation metrics beyond the thresholds: parse rate, degenerate repetition, cluster-bootstrap CIs. */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { geolocateMetrics, hasRepeatedNgram, pairingMetrics } from "../lib/eval/metrics.ts";
import { MAX_DISTANCE_KM } from "../lib/eval/geo.ts";

Deno.test("hasRepeatedNgram() finds a 6-gram that occurs twice, overlapping or not", () => {
  assertEquals(hasRepeatedNgram([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), false);
  // "so in in in in in in in": seven "in" (id 5) hold the 6-gram of "in"s twice (overlapping).
  assertEquals(hasRepeatedNgram([9, 5, 5, 5, 5, 5, 5, 5]), true);
  // Six "in" hold it once only.
  assertEquals(hasRepeatedNgram([9, 5, 5, 5, 5, 5, 5]), false);
  // A phrase said twice apart.
  assertEquals(hasRepeatedNgram([1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]), true);
  // Five tokens repeated is below n.
  assertEquals(hasRepeatedNgram([1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]), false);
  assertEquals(hasRepeatedNgram([1, 2, 1, 2], 2), true);
  assertEquals(hasRepeatedNgram([]), false);
  assertThrows(() => hasRepeatedNgram([1], 0), /n must be >= 1/);
});

Deno.test("geolocateMetrics() reports parse rate, repetition rate and per-example errors in test order", () => {
  const m = geolocateMetrics([
    { km: 10, tokens: 5, parsed: true, repeated: false },
    { km: Infinity, tokens: 9, parsed: false, repeated: true },
    { km: 3000, tokens: 7, parsed: true, repeated: true },
    { km: NaN, tokens: 1 },
  ]);
  assertEquals(m.parseRate, 0.5);
  assertEquals(m.repetitionRate, 0.5);
  assertEquals(m.errorsKm, [10, MAX_DISTANCE_KM, 3000, MAX_DISTANCE_KM]);
  assertEquals(m.bootstrap, "example");
  assertEquals(m.cells, undefined);
  assertEquals(m.thresholds["25"], 0.25);
});

Deno.test("geolocateMetrics() counts distinct answer points and the most common one's share", () => {
  const at = (lat: number, lon: number) => ({ lat, lon });
  const m = geolocateMetrics([
    { km: 10, tokens: 3, point: at(38, 78) },
    { km: 900, tokens: 3, point: at(38.001, 78.004) }, // the same point to 0.01 degree
    { km: 2000, tokens: 3, point: at(38, 11) },
    { km: Infinity, tokens: 3, point: null }, // unparseable: no point, still a view
  ]);
  assertEquals([m.distinctAnswers, m.topAnswerShare], [2, 0.5]);
  // Items without points (older callers): no diversity numbers at all.
  const old = geolocateMetrics([{ km: 10, tokens: 3 }, { km: 20, tokens: 3 }]);
  assert(!("distinctAnswers" in old) && !("topAnswerShare" in old), JSON.stringify(Object.keys(old)));
  // Nothing parsed: no point, and no view got one.
  const none = geolocateMetrics([{ km: Infinity, tokens: 1, point: null }]);
  assertEquals([none.distinctAnswers, none.topAnswerShare], [0, 0]);
});

Deno.test("geolocateMetrics() with cells: cluster bootstrap, counted cells, cells kept", () => {
  // Two cells, each all hits or all misses: the cluster bootstrap can only give 0, 1/2 or 1 per resample
  // (equal cell sizes), so the 95% interval is [0, 1]; the example bootstrap of 20 values is far narrower.
  const items = Array.from({ length: 20 }, (_, i) => ({
    km: i < 10 ? 5 : 5000,
    tokens: 3,
    cluster: i < 10 ? "10:20" : "-5:40",
  }));
  const m = geolocateMetrics(items, { resamples: 2000, seed: 1 });
  assertEquals(m.bootstrap, "cluster");
  assertEquals(m.clusters, 2);
  assertEquals(m.cells?.length, 20);
  assertEquals(m.thresholdCi["25"], [0, 1]);
  const iid = geolocateMetrics(items.map(({ km, tokens }) => ({ km, tokens })), { resamples: 2000, seed: 1 });
  const [lo, hi] = iid.thresholdCi["25"];
  assert(lo > 0.2 && hi < 0.8, `${lo}..${hi}`);
});

Deno.test("pairingMetrics() states its bootstrap and uses cells when every item has one", () => {
  const items = [true, true, false, false].map((correct, i) => ({
    correct,
    tokens: 10,
    formatOk: true,
    tier: "near",
    cluster: i < 2 ? "a" : "b",
  }));
  const m = pairingMetrics(items, { resamples: 1000, seed: 2 });
  assertEquals(m.bootstrap, "cluster");
  assertEquals(m.clusters, 2);
  assertEquals(m.ci, [0, 1]);
  // One item without a cell: no cluster bootstrap at all (never a mix).
  const mixed = pairingMetrics([...items, { ...items[0], cluster: undefined }], { resamples: 100 });
  assertEquals(mixed.bootstrap, "example");
});
