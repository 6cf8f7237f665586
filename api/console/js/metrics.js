// The API's own figures from /metrics (Prometheus text): cumulative counts of ended predictions
// and wait/run histograms per model. Two samples a few minutes apart give throughput and
// latency percentiles over that window.

const LINE = /^([a-zA-Z_:][\w:]*)\{([^}]*)\}\s+(\S+)/;
const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

// {finished: {model: count}, wait: {model: [[le, count], …]}, run: {…}}
export function parseMetrics(text) {
  const sample = { finished: {}, wait: {}, run: {} };
  for (const line of text.split("\n")) {
    const match = LINE.exec(line);
    if (!match) continue;
    const [, name, rawLabels, rawValue] = match;
    const labels = {};
    for (const [, key, value] of rawLabels.matchAll(LABEL)) labels[key] = value;
    const value = Number(rawValue);
    if (name === "inferq_predictions_finished_total") {
      sample.finished[labels.model] = (sample.finished[labels.model] || 0) + value;
    } else if (name === "inferq_prediction_wait_seconds_bucket" || name === "inferq_prediction_run_seconds_bucket") {
      const kind = name.includes("_wait_") ? "wait" : "run";
      (sample[kind][labels.model] ||= []).push([labels.le === "+Inf" ? Infinity : Number(labels.le), value]);
    }
  }
  return sample;
}

function summed(histograms, models) {
  const total = new Map();
  for (const model of models) {
    for (const [le, count] of histograms[model] || []) total.set(le, (total.get(le) || 0) + count);
  }
  return [...total.entries()].sort((a, b) => a[0] - b[0]);
}

function difference(newer, older) {
  const before = new Map(older);
  return newer.map(([le, count]) => [le, count - (before.get(le) || 0)]);
}

// The q-quantile of a cumulative histogram, interpolated linearly inside its bucket.
export function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1][1] : 0;
  if (!total) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return previousBound;
      const inBucket = count - previousCount;
      return previousBound + (le - previousBound) * (inBucket ? (rank - previousCount) / inBucket : 0);
    }
    previousBound = le;
    previousCount = count;
  }
  return previousBound;
}

// Throughput (ended per minute) and wait/run percentiles of `models` between two samples.
export function windowFigures(older, newer, models) {
  const minutes = (newer.at - older.at) / 60000;
  const ended = models.reduce((sum, m) => sum + (newer.finished[m] || 0) - (older.finished[m] || 0), 0);
  const run = difference(summed(newer.run, models), summed(older.run, models));
  const wait = difference(summed(newer.wait, models), summed(older.wait, models));
  return {
    minutes,
    ended,
    perMinute: minutes > 0 ? ended / minutes : null,
    runP50: quantile(run, 0.5),
    runP95: quantile(run, 0.95),
    waitP50: quantile(wait, 0.5),
    waitP95: quantile(wait, 0.95),
  };
}
