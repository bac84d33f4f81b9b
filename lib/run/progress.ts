/**
 * Progress on long loops. On a terminal: a live bar from `cli-progress` on stderr. Otherwise (CI logs,
 * pipes): one compact line at every 10% and at the end, so logs stay readable. Nothing goes to stdout.
 * @module
 */
import cliProgress from "cli-progress";

/** A running progress indicator. */
export interface Progress {
  /** Advance by `n` (default 1). `info` is shown after the bar (e.g. loss). */
  tick(n?: number, info?: Record<string, string | number>): void;
  /** Set the absolute position. */
  update(value: number, info?: Record<string, string | number>): void;
  /** Finish (prints the final line when not on a terminal). Idempotent. */
  stop(): void;
}

/** Options of {@link progress}; the defaults detect a terminal on stderr. */
export interface ProgressOptions {
  /** Force terminal (bar) or log (lines) mode. */
  tty?: boolean;
  /** Where log-mode lines go (default: stderr). */
  write?: (line: string) => void;
}

function formatInfo(info: Record<string, string | number> | undefined): string {
  if (!info) return "";
  return Object.entries(info)
    .map(([k, v]) => `${k}=${typeof v === "number" ? (Number.isInteger(v) ? v : v.toPrecision(4)) : v}`)
    .join(" ");
}

function isStderrTty(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

/** Start a progress indicator for `total` units of work labelled `label`. */
export function progress(total: number, label: string, opts: ProgressOptions = {}): Progress {
  const tty = opts.tty ?? isStderrTty();
  const t0 = performance.now();
  let value = 0;
  let stopped = false;
  if (tty && !opts.write) {
    const bar = new cliProgress.SingleBar({
      format:
        `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted} < {eta_formatted} | {info}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
      fps: 5,
    }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { info: "" });
    return {
      tick(n = 1, info) {
        value += n;
        bar.update(value, { info: formatInfo(info) });
      },
      update(v, info) {
        value = v;
        bar.update(value, info ? { info: formatInfo(info) } : {});
      },
      stop() {
        if (stopped) return;
        stopped = true;
        bar.stop();
      },
    };
  }
  const enc = new TextEncoder();
  const write = opts.write ?? ((line: string) => Deno.stderr.writeSync(enc.encode(line + "\n")));
  let lastDecile = -1;
  let lastInfo: Record<string, string | number> | undefined;
  const line = () => {
    const pct = total > 0 ? Math.floor((100 * value) / total) : 100;
    const secs = (performance.now() - t0) / 1000;
    const eta = value > 0 && total > value ? ` eta ${((secs * (total - value)) / value).toFixed(0)}s` : "";
    const info = formatInfo(lastInfo);
    return `${label}: ${pct}% (${value}/${total}) ${secs.toFixed(1)}s${eta}${info ? " " + info : ""}`;
  };
  const maybePrint = () => {
    const decile = total > 0 ? Math.floor((10 * value) / total) : 10;
    if (decile <= lastDecile) return;
    lastDecile = decile;
    if (decile >= 1 && decile < 10) write(line());
  };
  return {
    tick(n = 1, info) {
      value += n;
      if (info) lastInfo = info;
      maybePrint();
    },
    update(v, info) {
      value = v;
      if (info) lastInfo = info;
      maybePrint();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      write(line());
    },
  };
}
