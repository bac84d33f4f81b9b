/**
 * The numbers of an evaluation as a metrics.jsonl record carries them: `eval/<task>/<metric>` for the test
 * split (kind `test`, one per stage and eval spec) and `eval/val_<task>/<metric>` for the in-stage validation
 * (kind `eval`), so the curves of a stage and its final numbers never share a name.
 * @module
 */
import type { StageEval } from "../run/records.ts";

/**
 * The `eval/<prefix><task>/<metric>` numbers of `res`: pairing accuracy, format rate and length; geolocation
 * accuracy within each threshold, median error, length, parse and repetition rates; geo-qa accuracy; control
 * accuracy and format rate. Metrics an evaluation does not have are left out.
 */
export function evalMetrics(res: StageEval, prefix: "" | "val_"): Record<string, number> {
  const out: Record<string, number> = {};
  const put = (task: string, metric: string, v: number | undefined) => {
    if (typeof v === "number") out[`eval/${prefix}${task}/${metric}`] = v;
  };
  if (res.pairing) {
    put("pairing", "accuracy", res.pairing.accuracy);
    put("pairing", "format_rate", res.pairing.formatRate);
    put("pairing", "mean_length", res.pairing.meanLength);
  }
  if (res.geolocate) {
    for (const [k, v] of Object.entries(res.geolocate.thresholds)) put("geolocate", `acc@${k}km`, v);
    put("geolocate", "median_km", res.geolocate.medianKm);
    put("geolocate", "mean_length", res.geolocate.meanLength);
    put("geolocate", "parse_rate", res.geolocate.parseRate);
    put("geolocate", "repetition_rate", res.geolocate.repetitionRate);
    put("geolocate", "distinct_answers", res.geolocate.distinctAnswers);
    put("geolocate", "top_answer_share", res.geolocate.topAnswerShare);
  }
  if (res.geoqa) put("geoqa", "accuracy", res.geoqa.accuracy);
  if (res.control) {
    put("control", "accuracy", res.control.accuracy);
    put("control", "format_rate", res.control.formatRate);
  }
  return out;
}
