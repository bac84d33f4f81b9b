import { assert, assertEquals, assertNotEquals, assertOk } from "./assert.ts";
import { createWorld, regionKeyFor, sceneCues, sunPosition } from "../lib/world/mod.ts";
import { Rng } from "../lib/rng.ts";

const world = await createWorld({ seed: 42 });

const PARIS = [48.8566, 2.3522] as const;
const TOKYO = [35.6812, 139.7671] as const;
const SYDNEY = [-33.8688, 151.2093] as const;

Deno.test("geography loads once per process: a second world shares the first one's rasters", async () => {
  // The build time (~2 s on an idle core) is a benchmark's (bench/render_bench.ts), not a test's.
  const other = await createWorld({ seed: 43 });
  assert(other.cities === world.cities, "the second world loaded its own geography");
  assertNotEquals(other.seed, world.seed);
});

Deno.test("land and ocean", () => {
  assert(world.isLand(...PARIS));
  assert(!world.isLand(30, -40)); // mid-Atlantic
  assert(!world.isLand(0, -140)); // Pacific
  assert(world.isLand(-85, 0)); // Antarctic plateau
  assert(world.isLand(-25, 133)); // Australia
});

Deno.test("countries, continents, driving side", () => {
  const cases: [number, number, string, string, "left" | "right"][] = [
    [...PARIS, "FRA", "Europe", "right"],
    [...TOKYO, "JPN", "Asia", "left"],
    [...SYDNEY, "AUS", "Oceania", "left"],
    [51.5074, -0.1278, "GBR", "Europe", "left"],
    [41.8781, -87.6298, "USA", "North America", "right"],
    [-23.55, -46.63, "BRA", "South America", "right"],
    [-1.29, 36.82, "KEN", "Africa", "left"],
    [28.61, 77.21, "IND", "Asia", "left"],
    [52.52, 13.405, "DEU", "Europe", "right"],
  ];
  for (const [lat, lon, iso, cont, side] of cases) {
    const m = world.sceneAt(lat, lon).meta;
    assertEquals([m.country, m.continent, m.drivingSide], [iso, cont, side], `${lat},${lon}`);
  }
});

Deno.test("climate model", () => {
  const cases: [string, number, number, string][] = [
    ["Sahara", 23, 12, "arid"],
    ["Arabia", 23, 46, "arid"],
    ["interior Australia", -25, 133, "arid"],
    ["Phoenix", 33.45, -112.07, "arid"],
    ["Namib", -24, 15.5, "arid"],
    ["Singapore", 1.3521, 103.8198, "tropical"],
    ["Manaus", -3.1, -60.0, "tropical"],
    ["Lagos", 6.52, 3.38, "tropical"],
    ["Greenland interior", 72, -40, "polar"],
    ["Antarctica", -80, 30, "polar"],
    ["London", 51.5074, -0.1278, "temperate"],
    ["Paris", ...PARIS, "temperate"],
    ["Sydney", ...SYDNEY, "temperate"],
    ["Moscow", 55.75, 37.62, "continental"],
  ];
  for (const [name, lat, lon, want] of cases) assertEquals(world.climateAt(lat, lon), want, name);
  assertEquals(world.sceneAt(72, -40).meta.vegetation, "ice");
  assertEquals(world.sceneAt(23, 12).meta.vegetation, "desert");
});

Deno.test("city density", () => {
  const paris = world.sceneAt(...PARIS).meta;
  assertEquals(paris.settlement, "urban");
  assertEquals(paris.nearestCity, "Paris");
  assertOk(paris.nearestCityKm < 5);
  const sahara = world.sceneAt(23, 12).meta;
  assertEquals(sahara.settlement, "rural");
  assertOk(sahara.density < 0.05);
  assertOk(world.densityAt(48.5, 3.5) < world.densityAt(...PARIS));
});

Deno.test("scenes are deterministic in (seed, location rounded to 1e-5)", async () => {
  const a = world.sceneAt(...TOKYO), b = world.sceneAt(...TOKYO);
  assertEquals(a, b);
  assertEquals(world.sceneAt(35.681201, 139.767101), a); // same 1e-5 cell
  const other = await createWorld({ seed: 43 });
  const c = other.sceneAt(...TOKYO);
  assertNotEquals(JSON.stringify(c.layout), JSON.stringify(a.layout));
  assertEquals(c.meta.country, a.meta.country); // geography is data, not seed
  assertNotEquals(a.meta.id, c.meta.id);
});

Deno.test("nearby places (5-50 km) get different local layouts", () => {
  let differ = 0, n = 0;
  const rng = new Rng(3);
  for (let i = 0; i < 40; i++) {
    const p = world.sampleLocation(rng.fn());
    const q = { lat: p.lat + 0.1, lon: p.lon };
    const a = sceneCues(world.sceneAt(p.lat, p.lon)), b = sceneCues(world.sceneAt(q.lat, q.lon));
    n++;
    const key = (c: typeof a) => JSON.stringify([c.roadAxes, c.waterSide, c.buildingDensity, c.treeCover]);
    if (key(a) !== key(b)) differ++;
  }
  assertOk(differ / n > 0.8, `only ${differ}/${n} near pairs differ in their cues`);
});

Deno.test("scene metadata is complete and consistent", () => {
  const rng = new Rng(9);
  for (let i = 0; i < 200; i++) {
    const p = world.sampleLocation(rng.fn());
    assert(world.isLand(p.lat, p.lon));
    const s = world.sceneAt(p.lat, p.lon);
    const m = s.meta;
    assertEquals(m.regionKey, regionKeyFor(m.lat, m.lon, 5));
    assertOk(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(m.timestamp), m.timestamp);
    const sp = sunPosition(m.lat, m.lon, new Date(m.timestamp));
    assertOk(Math.abs(sp.elevation - m.sunElevation) < 0.02);
    assertOk(m.density >= 0 && m.density <= 1);
    assertOk(m.country.length === 3 && m.nearestCity.length > 0);
    for (const r of s.layout.roads) assertOk(r.bearing >= 0 && r.bearing < 180 && r.width >= 8);
    const c = sceneCues(s);
    assertEquals(c.roadCount, s.layout.roads.length);
    assertEquals(c.buildingDensity === "none", s.layout.buildings.length === 0);
  }
});

Deno.test("sampleLocation is deterministic and mixes cities with open land", () => {
  const rngA = new Rng(11), rngB = new Rng(11);
  const xs = Array.from({ length: 300 }, () => world.sampleLocation(rngA.fn()));
  const ys = Array.from({ length: 300 }, () => world.sampleLocation(rngB.fn()));
  assertEquals(xs, ys);
  const settle = xs.map((p) => world.sceneAt(p.lat, p.lon).meta.settlement);
  for (const s of ["urban", "suburban", "rural"]) assertOk(settle.includes(s as never), s);
});

Deno.test("sun position", () => {
  // equinox, noon UTC at (0, 0): sun near the zenith
  assertOk(sunPosition(0, 0, new Date("2023-03-20T12:07:00Z")).elevation > 88);
  // London at the June solstice, local noon: ~62 degrees, due south
  const s = sunPosition(51.48, 0, new Date("2023-06-21T12:02:00Z"));
  assertOk(Math.abs(s.elevation - 62) < 1, String(s.elevation));
  assertOk(Math.abs(s.azimuth - 180) < 3, String(s.azimuth));
  // morning sun in the east
  const m = sunPosition(0, 0, new Date("2023-03-20T08:00:00Z"));
  assertOk(Math.abs(m.azimuth - 90) < 5 && m.elevation > 25 && m.elevation < 35, JSON.stringify(m));
});

Deno.test("region keys", () => {
  assertEquals(regionKeyFor(48.85, 2.35, 5), regionKeyFor(47.6, 0.1, 5));
  assertNotEquals(regionKeyFor(48.85, 2.35, 5), regionKeyFor(48.85, 5.1, 5));
  assertEquals(regionKeyFor(0, 180, 5), regionKeyFor(0, -180, 5));
});
