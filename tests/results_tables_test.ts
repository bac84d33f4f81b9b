/**
 * tools/results_tables.ts as a maintainer runs it on finished runs: the pairing and geolocation tables with
 * per-seed values, means and paired differences from Base, the answer-form table read from predictions.jsonl
 * (geo-qa and geolocation answers written as a bare option letter), a run's own row winning over another
 * run's cached sibling row, and two own rows that disagree stopping the script.
 */
import { join } from "node:path";
import { assert, assertEquals } from "./assert.ts";
import { denoRun } from "./helpers_cli.ts";

type Rec = { label: string; task: string; parsed: string | null; correct: boolean };

/** One eval row with the fields the tables read. */
function row(label: string, pairing: number, geoqa: number) {
  return {
    stage: label,
    label,
    stageHash: "0",
    pairing: {
      n: 4,
      accuracy: pairing,
      ci: [0, 1],
      meanLength: 10,
      lengthCi: [9, 11],
      formatRate: 1,
      byTier: {},
    },
    geolocate: {
      n: 4,
      thresholds: { "1": 0, "25": 0, "200": 0, "750": 0, "2500": 0.25 },
      thresholdCi: {},
      medianKm: 5000,
      meanLength: 10,
      parseRate: 1,
    },
    geoqa: { n: 4, byKind: {}, accuracy: geoqa },
    gallery: [],
  };
}

async function fakeRun(root: string, name: string, seed: number, recs: Rec[], rows: unknown[]) {
  const dir = join(root, name);
  await Deno.mkdir(dir);
  await Deno.writeTextFile(join(dir, "eval.json"), JSON.stringify({ experiment: "x", runId: name, rows }));
  await Deno.writeTextFile(join(dir, "spec.resolved.json"), JSON.stringify({ seed }));
  await Deno.writeTextFile(
    join(dir, "predictions.jsonl"),
    recs.map((r) => JSON.stringify(r)).join("\n") + "\n",
  );
  return dir;
}

/** Run the tool on run directories as a maintainer does: exit code, stdout, stderr. */
function tables(...dirs: string[]): Promise<{ code: number; out: string; err: string }> {
  return denoRun(["run", "--allow-read", "tools/results_tables.ts", ...dirs]);
}

const qa = (label: string, parsed: string, correct: boolean): Rec => ({
  label,
  task: "geoqa",
  parsed,
  correct,
});
const geo = (label: string, parsed: string | null): Rec => ({
  label,
  task: "geolocate",
  parsed,
  correct: false,
});

Deno.test("results_tables: answer forms come from predictions.jsonl, seeds become columns", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "geo-r1-tables-" });
  try {
    // Seed 0: the RL row answers half the geo-qa questions with a letter; of the other two, one is right.
    const a = await fakeRun(tmp, "a", 0, [
      qa("Base", "arid", true),
      qa("Base", "rural", true),
      qa("Base", "Peru", false),
      qa("Base", "left", false),
      geo("Base", "1, 2"),
      geo("Base", "3, 4"),
      qa("Geo-R1-Zero", "B", false),
      qa("Geo-R1-Zero", " D ", false),
      qa("Geo-R1-Zero", "arid", true),
      qa("Geo-R1-Zero", "Brazil", false),
      geo("Geo-R1-Zero", "C"),
      geo("Geo-R1-Zero", null),
    ], [row("Base", 0.25, 0.5), row("Geo-R1-Zero", 0.75, 0.25)]);
    // Seed 1: no letters at all.
    const b = await fakeRun(tmp, "b", 1, [
      qa("Base", "arid", true),
      qa("Base", "rural", false),
      qa("Geo-R1-Zero", "arid", true),
      qa("Geo-R1-Zero", "urban", true),
      geo("Geo-R1-Zero", "5, 6"),
    ], [row("Base", 0.25, 0.5), row("Geo-R1-Zero", 0.5, 1)]);
    // A Task-SFT run of seed 0 also holds a cached sibling's Geo-R1-Zero row of another configuration.
    const sib = { ...row("Geo-R1-Zero", 0.1, 0.1), stage: "grpo (cached sibling)" };
    const c = await fakeRun(tmp, "c", 0, [], [row("Base", 0.25, 0.5), sib, row("Task-SFT", 0.8, 0.5)]);
    const { code, out, err } = await tables(c, a, b);
    assertEquals(code, 0, err);
    assert(err.includes(`Geo-R1-Zero seed 0: ${a}'s own row replaces ${c}'s cached sibling row`), err);
    const line = (title: string, label: string) => {
      const part = out.slice(out.indexOf(title));
      const l = part.split("\n").find((l) => l.startsWith(`| ${label} |`)) ?? "";
      return l.split("|").slice(1, -1).map((c) => c.trim());
    };
    assertEquals(
      line("Table 2 analogue", "Geo-R1-Zero")[1],
      "75.0 / 50.0; 62.5 [-96.3, 221.3]",
    );
    const forms = line("Answer forms", "Geo-R1-Zero");
    // letter answers 50% / 0%; accuracy among the others 50% / 100%; geolocation letters 50% / 0%.
    assertEquals(forms.slice(1, 4), [
      "50.0 / 0.0; 25.0 [-292.6, 342.6]",
      "50.0 / 100.0; 75.0 [-242.6, 392.6]",
      "50.0 / 0.0; 25.0 [-292.6, 342.6]",
    ]);
    // Differences from Base, paired by seed: letters +50 / +0; accuracy among the others 0 / +50.
    assertEquals(forms.slice(4, 6), ["25.0 [-292.6, 342.6]", "25.0 [-292.6, 342.6]"]);
    const baseForms = line("Answer forms", "Base");
    assertEquals(baseForms[1], "0.0 / 0.0; 0.0 [0.0, 0.0]");
    assert(baseForms[3].startsWith("0.0;"), `Base of seed 1 has no geolocation answers: ${baseForms[3]}`);
    assertEquals(line("Table 2 analogue", "Task-SFT")[1], "80.0; 80.0");
    // Per run: the eval's own intervals, one line per row and seed.
    assertEquals(line("Per-run 95% CIs", "Geo-R1-Zero, 1").slice(1), [
      "50.0 [0.0, 100.0]",
      "100.0",
      "10.0",
      "25.0",
      "0.0",
      "5,000",
      "100.0",
      "100.0",
    ]);
    // The titles give the examples' counts; a label outside the paper's order follows the others.
    assert(out.includes("pairing on the test split (4 pairings, >= 1/3 near negatives, greedy)"), out);
    const anchored = await fakeRun(tmp, "e", 0, [], [
      row("Base", 0.25, 0.5),
      row("Geo-R1 (geoqa RL)", 0.2, 0.7),
      row("Geo-R1 + anchor", 0.7, 0.6),
    ]);
    const withVariant = await tables(anchored, a);
    assertEquals(withVariant.code, 0, withVariant.err);
    const rowsOut = withVariant.out.split("Table 1 analogue")[0].split("\n")
      .filter((l) => l.startsWith("| ") && !l.startsWith("| ---"));
    assertEquals(rowsOut.map((l) => l.split("|")[1].trim()), [
      "row",
      "Base",
      "Geo-R1-Zero",
      "Geo-R1 + anchor",
      "Geo-R1 (geoqa RL)",
    ]);
    // An evaluation of a bare checkpoint (no seed, no row label) is refused, naming the folder.
    const ckpt = await fakeRun(tmp, "f", 0, [], [row("grpo", 0.5, 0.5)]);
    await Deno.writeTextFile(join(ckpt, "manifest.json"), JSON.stringify({ evalOf: { kind: "checkpoint" } }));
    const refused = await tables(a, ckpt);
    assertEquals(refused.code, 1);
    assert(
      refused.err.includes(`${ckpt}: an evaluation of a checkpoint has no seed and no row label`),
      refused.err,
    );
    // A run that has not finished (no eval.json yet) is named in one line, without a stack.
    const unfinished = join(tmp, "g");
    await Deno.mkdir(unfinished);
    await Deno.writeTextFile(join(unfinished, "spec.resolved.json"), JSON.stringify({ seed: 2 }));
    const early = await tables(a, unfinished);
    assertEquals(early.code, 1);
    assertEquals(
      early.err.trim(),
      `results_tables: ${
        join(unfinished, "eval.json")
      }: not found (a run writes it when its test evaluation ends)`,
    );
    // Two runs' own rows that disagree stop the script, naming both.
    const d = await fakeRun(tmp, "d", 1, [], [row("Geo-R1-Zero", 0.9, 1)]);
    const bad = await tables(b, d);
    assertEquals(bad.code, 1);
    assert(bad.err.includes(`Geo-R1-Zero seed 1: ${b} and ${d} disagree`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
