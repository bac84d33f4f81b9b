/** Evaluation: great-circle distances, thresholds, bootstrap statistics and metric aggregation. */
import { assert, assertEquals } from "./assert.ts";
import {
  EARTH_RADIUS_KM,
  GEO_THRESHOLDS_KM,
  haversineKm,
  type LatLon,
  MAX_DISTANCE_KM,
  parseLatLon,
  thresholdAccuracy,
} from "../lib/eval/geo.ts";
import { bootstrapCi, mean, meanCi, median, quantile, std } from "../lib/eval/stats.ts";
import { geolocateMetrics, geoqaMetrics, pairingMetrics } from "../lib/eval/metrics.ts";
import { Rng } from "../lib/rng.ts";

const C: Record<string, LatLon> = {
  london: { lat: 51.5074, lon: -0.1278 },
  paris: { lat: 48.8566, lon: 2.3522 },
  newYork: { lat: 40.7128, lon: -74.006 },
  losAngeles: { lat: 34.0522, lon: -118.2437 },
  sydney: { lat: -33.8688, lon: 151.2093 },
  tokyo: { lat: 35.6762, lon: 139.6503 },
};

/**
 * Reference distances for these coordinates, computed independently (Python, float64):
 * - sphere: R * atan2(|u x v|, u . v) on unit vectors, R = 6371.0088 km (a different formula from haversine,
 *   exact on the sphere): haversine must agree to 1e-6 relative;
 * - wgs84: Vincenty's inverse formula on the WGS84 ellipsoid: the spherical distance must be within 0.5%.
 */
const REF: [string, string, number, number][] = [
  ["london", "paris", 343.5565, 343.9231],
  ["newYork", "losAngeles", 3935.7517, 3944.4222],
  ["sydney", "tokyo", 7825.8294, 7792.1748],
  ["london", "newYork", 5570.2299, 5585.2336],
];

Deno.test("haversineKm matches known city-pair distances", () => {
  for (const [a, b, sphere, wgs84] of REF) {
    const d = haversineKm(C[a], C[b]);
    assert.ok(Math.abs(d - sphere) / sphere < 1e-6, `${a}-${b}: ${d} vs sphere ${sphere}`);
    assert.ok(Math.abs(d - wgs84) / wgs84 < 0.005, `${a}-${b}: ${d} vs WGS84 ${wgs84}`);
    assert.ok(Math.abs(haversineKm(C[b], C[a]) - d) < 1e-9, "symmetric");
  }
  // Rounded figures often quoted: London-Paris ~343.5 km, NY-LA ~3936 km, Sydney-Tokyo ~7826 km.
  assert.ok(Math.abs(haversineKm(C.london, C.paris) - 343.5) < 0.1);
  assert.ok(Math.abs(haversineKm(C.newYork, C.losAngeles) - 3936) < 1);
  assert.ok(Math.abs(haversineKm(C.sydney, C.tokyo) - 7826) < 1);
});

Deno.test("haversineKm edge cases: zero, dateline, poles, antipodes, tiny distances", () => {
  assertEquals(haversineKm(C.paris, C.paris), 0);
  const deg = (Math.PI / 180) * EARTH_RADIUS_KM; // 111.195 km
  assert.ok(
    Math.abs(haversineKm({ lat: 0, lon: 179.5 }, { lat: 0, lon: -179.5 }) - deg) < 1e-6,
    "across the dateline",
  );
  assert.ok(
    Math.abs(haversineKm({ lat: 90, lon: 0 }, { lat: -90, lon: 0 }) - MAX_DISTANCE_KM) < 1e-6,
    "pole to pole",
  );
  assert.ok(
    Math.abs(haversineKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 }) - MAX_DISTANCE_KM) < 1e-6,
    "antipodes",
  );
  assert.ok(Math.abs(MAX_DISTANCE_KM - 20015.1144) < 1e-3);
  assert.ok(
    Math.abs(haversineKm({ lat: 90, lon: 0 }, { lat: 90, lon: 120 })) < 1e-9,
    "the pole is one point",
  );
  // 1e-5 degree of latitude = 1.112 m.
  assert.ok(Math.abs(haversineKm({ lat: 10, lon: 10 }, { lat: 10.00001, lon: 10 }) - 1e-5 * deg) < 1e-9);
});

Deno.test("parseLatLon is strict", () => {
  assertEquals(parseLatLon("48.86, 2.35"), { lat: 48.86, lon: 2.35 });
  assertEquals(parseLatLon(" -33.9 ,151.2 "), { lat: -33.9, lon: 151.2 });
  assertEquals(parseLatLon("+90, -180"), { lat: 90, lon: -180 });
  assertEquals(parseLatLon("0,0"), { lat: 0, lon: 0 });
  assertEquals(parseLatLon(".5, 3."), { lat: 0.5, lon: 3 });
  for (
    const s of [
      "NaN, 0",
      "0, NaN",
      "Infinity, 0",
      "90.0001, 0",
      "0, -180.5",
      "1e1, 2",
      "48.86 2.35",
      "48.86;2.35",
      "48.86, 2.35, 1",
      "48°N, 2°E",
      "",
      ",",
      "a, b",
      "- 5, 3",
    ]
  ) {
    assertEquals(parseLatLon(s), null, s);
  }
});

Deno.test("thresholdAccuracy counts d <= t, misses for non-finite distances", () => {
  const r = thresholdAccuracy([0.5, 1, 30, 199.9, 800, Infinity, NaN, 2500], GEO_THRESHOLDS_KM);
  assertEquals(Object.keys(r), ["1", "25", "200", "750", "2500"]);
  assertEquals(r, { "1": 2 / 8, "25": 2 / 8, "200": 4 / 8, "750": 4 / 8, "2500": 6 / 8 });
  assertEquals(thresholdAccuracy([]), { "1": 0, "25": 0, "200": 0, "750": 0, "2500": 0 });
});

Deno.test("mean, std (sample / population), median, quantile", () => {
  assertEquals(mean([1, 2, 3, 4]), 2.5);
  assert.ok(Number.isNaN(mean([])));
  // squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5: sample var 5 / 3, population var 5 / 4.
  assert.ok(Math.abs(std([1, 2, 3, 4]) - Math.sqrt(5 / 3)) < 1e-12);
  assert.ok(Math.abs(std([1, 2, 3, 4], 0) - Math.sqrt(5 / 4)) < 1e-12);
  assertEquals(std([7]), 0);
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 3, 2]), 2.5);
  assertEquals(quantile([0, 10], 0.25), 2.5);
  assertEquals(quantile([5, 1, 3], 0), 1);
  assertEquals(quantile([5, 1, 3], 1), 5);
});

Deno.test("bootstrapCi: constant data, determinism, seed dependence, degenerate inputs", () => {
  assertEquals(bootstrapCi([0.7, 0.7, 0.7, 0.7], { resamples: 200, seed: 1 }), [0.7, 0.7]);
  assertEquals(bootstrapCi([3], { seed: 5 }), [3, 3]);
  const [a, b] = bootstrapCi([]);
  assert.ok(Number.isNaN(a) && Number.isNaN(b));
  const xs = Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? 1 : 0));
  const c1 = bootstrapCi(xs, { resamples: 500, seed: 42 });
  assertEquals(bootstrapCi(xs, { resamples: 500, seed: 42 }), c1, "same seed, same interval");
  assert.notDeepEqual(bootstrapCi(xs, { resamples: 500, seed: 43 }), c1, "another seed moves it");
  assert.ok(c1[0] < mean(xs) && mean(xs) < c1[1], "contains the sample mean");
  // A wider interval for a smaller alpha; the median statistic works.
  const c99 = bootstrapCi(xs, { resamples: 500, seed: 42, alpha: 0.01 });
  assert.ok(c99[0] <= c1[0] && c99[1] >= c1[1]);
  const cm = bootstrapCi([1, 2, 3, 100, 101], { resamples: 300, seed: 1, statistic: median });
  assert.ok(cm[0] >= 1 && cm[1] <= 101);
});

Deno.test("bootstrapCi: width and coverage on normal samples", () => {
  // Width: for n = 400 draws of N(0, 1) the 95% CI of the mean is close to 2 * 1.96 / sqrt(n) = 0.196.
  const rng = new Rng(7);
  const big = Array.from({ length: 400 }, () => rng.normal());
  const [lo, hi] = bootstrapCi(big, { resamples: 2000, seed: 3 });
  const se = std(big) / Math.sqrt(big.length);
  assert.ok(Math.abs((hi - lo) / (2 * 1.96 * se) - 1) < 0.1, `width ${hi - lo} vs ${2 * 1.96 * se}`);
  // Coverage: over 200 samples of n = 30 the interval should contain the true mean ~95% of the time
  // (the percentile bootstrap under-covers slightly at small n); accept [0.88, 0.99].
  let covered = 0;
  const trials = 200;
  for (let k = 0; k < trials; k++) {
    const x = Array.from({ length: 30 }, () => 5 + 2 * rng.normal());
    const [a, b] = bootstrapCi(x, { resamples: 400, seed: k });
    if (a <= 5 && 5 <= b) covered++;
  }
  const cov = covered / trials;
  assert.ok(cov >= 0.88 && cov <= 0.99, `coverage ${cov}`);
});

Deno.test("meanCi over seed replicates", () => {
  const r = meanCi([0.71, 0.74, 0.69], { resamples: 1000, seed: 0 });
  assertEquals(r.n, 3);
  assert.ok(Math.abs(r.mean - 0.7133333) < 1e-6);
  assert.ok(r.lo >= 0.69 && r.hi <= 0.74 && r.lo < r.mean && r.mean < r.hi);
  assertEquals(meanCi([0.5]), { n: 1, mean: 0.5, lo: 0.5, hi: 0.5 });
});

Deno.test("pairingMetrics: accuracy, CI, length, format rate, by tier", () => {
  const items = [
    { correct: true, tokens: 10, formatOk: true, tier: "near" },
    { correct: false, tokens: 20, formatOk: true, tier: "near" },
    { correct: true, tokens: 30, formatOk: true, tier: "far" },
    { correct: false, tokens: 40, formatOk: false, tier: "climate" },
  ];
  const m = pairingMetrics(items, { resamples: 300, seed: 1 });
  assertEquals(m.n, 4);
  assertEquals(m.accuracy, 0.5);
  assertEquals(m.meanLength, 25);
  assertEquals(m.formatRate, 0.75);
  assertEquals(m.byTier, {
    near: { n: 2, accuracy: 0.5 },
    far: { n: 1, accuracy: 1 },
    climate: { n: 1, accuracy: 0 },
  });
  assert.ok(m.ci[0] >= 0 && m.ci[0] <= 0.5 && m.ci[1] >= 0.5 && m.ci[1] <= 1);
  assert.ok(m.lengthCi[0] >= 10 && m.lengthCi[1] <= 40 && m.lengthCi[0] < 25 && m.lengthCi[1] > 25);
  assertEquals(pairingMetrics(items, { resamples: 300, seed: 1 }), m, "deterministic");
  const e = pairingMetrics([]);
  assertEquals(e, {
    n: 0,
    accuracy: 0,
    ci: [0, 0],
    meanLength: 0,
    lengthCi: [0, 0],
    formatRate: 0,
    namedMatchRate: 0,
    answerFollowsMatch: 0,
    byTier: {},
    bootstrap: "example",
  });
  JSON.parse(JSON.stringify(m));
});

Deno.test("pairingMetrics: answerFollowsMatch is over completions that name one match", () => {
  const it = (correct: boolean, followsMatch?: boolean | null) => ({
    correct,
    tokens: 5,
    formatOk: true,
    tier: "far",
    followsMatch,
  });
  // 5 items: 4 name a match (3 followed), 1 names none; an item without the field counts as naming none.
  const m = pairingMetrics([
    it(true, true),
    it(true, true),
    it(false, true),
    it(false, false),
    it(false, null),
  ]);
  assertEquals(m.namedMatchRate, 4 / 5);
  assertEquals(m.answerFollowsMatch, 3 / 4);
  const old = pairingMetrics([it(true), it(false)]);
  assertEquals([old.namedMatchRate, old.answerFollowsMatch], [0, 0]);
});

Deno.test("geolocateMetrics: thresholds with CIs, finite median with unparseable answers", () => {
  const items = [
    { km: 0.5, tokens: 12 },
    { km: 20, tokens: 14 },
    { km: 300, tokens: 16 },
    { km: Infinity, tokens: 18 },
    { km: NaN, tokens: 20 },
  ];
  const m = geolocateMetrics(items, { resamples: 200, seed: 2 });
  assertEquals(m.n, 5);
  const th: Record<string, number> = { ...m.thresholds };
  assertEquals(m.thresholds, { "1": 0.2, "25": 0.4, "200": 0.4, "750": 0.6, "2500": 0.6 });
  assertEquals(Object.keys(m.thresholdCi), ["1", "25", "200", "750", "2500"]);
  for (const [k, [lo, hi]] of Object.entries(m.thresholdCi)) {
    assert.ok(lo <= th[k] && th[k] <= hi);
  }
  assertEquals(m.medianKm, 300);
  assertEquals(m.meanLength, 16);
  // Mostly unparseable: the median is the maximum great-circle distance, not Infinity (JSON-safe).
  const bad = geolocateMetrics([{ km: Infinity, tokens: 1 }, { km: Infinity, tokens: 1 }, {
    km: 5,
    tokens: 1,
  }]);
  assertEquals(bad.medianKm, MAX_DISTANCE_KM);
  assertEquals(JSON.parse(JSON.stringify(bad)).medianKm, MAX_DISTANCE_KM);
  assertEquals(geolocateMetrics([]).n, 0);
});

Deno.test("geoqaMetrics: overall and per kind", () => {
  const m = geoqaMetrics([
    { kind: "continent", correct: true },
    { kind: "continent", correct: true },
    { kind: "country", correct: false },
    { kind: "driving", correct: true },
  ]);
  assertEquals(m, {
    n: 4,
    accuracy: 0.75,
    byKind: {
      continent: { n: 2, accuracy: 1 },
      country: { n: 1, accuracy: 0 },
      driving: { n: 1, accuracy: 1 },
    },
  });
  assertEquals(geoqaMetrics([]), { n: 0, byKind: {}, accuracy: 0 });
});
