//! The cause expressions: each stream's, pair's and consumer's cause across replicas,
//! one term per row of the diagnosis tables, so the rules follow the table; and the
//! summed bands of the baselines they judge the volume against.

use pipewatch_core::diagnosis::{join_incomplete, Replicas, CONSUMER_ORDER, ORDER};
use pipewatch_core::{Cause, JoinSpec};

use super::*;

/// The cause expression, one term per row of the diagnosis table: weights follow its
/// order, `topk` keeps the first that holds.
pub(super) fn cause_expr(config: &Config) -> String {
    let selector = |causes: &[Cause]| {
        let names: Vec<&str> = causes.iter().map(|c| c.as_str()).collect();
        match names.as_slice() {
            [one] => format!("cause=\"{one}\""),
            many => format!("cause=~\"{}\"", many.join("|")),
        }
    };
    let as_cause =
        |expr: String, cause: Cause| format!("label_replace({expr}, \"cause\", \"{}\", \"\", \"\")", cause.as_str());
    let mut terms: Vec<(String, usize)> = Vec::new();
    for (i, d) in ORDER.iter().enumerate() {
        let weight = ORDER.len() - i;
        let reported =
            |agg: &str, causes: &[Cause]| format!("({agg} by (job, stream) ({S_CAUSE}{{{}}}) == 1)", selector(causes));
        match d.replicas {
            Replicas::Any(causes) => terms.push((as_cause(reported("max", causes), d.cause), weight)),
            Replicas::All => terms.push((as_cause(reported("min", &[d.cause]), d.cause), weight)),
            // A replica compares only its share of the rate with the bounds: the volume
            // causes come from the summed rate instead.
            Replicas::SilentOnEveryReplica => {
                for s in config.streams.iter().filter(|s| s.has_segments()) {
                    let expr = format!(
                        "(max by (job, stream) ({SEGMENT_SILENCE}{{stream={0}}} > {1}) and on (job, stream) {2})",
                        quote(&s.name),
                        seconds(s.max_silence_ms),
                        reported("max", &[d.cause])
                    );
                    terms.push((as_cause(expr, d.cause), weight));
                }
            }
            Replicas::SummedRateOutsideBand => {
                for s in config.streams.iter().filter(|s| s.baseline.is_some()) {
                    let rate = format!("{STREAM_RATE}{{stream={}}}", quote(&s.name));
                    let expr = format!(
                        "((\n  {rate} < on (job, stream) {}\n  or\n  {rate} > on (job, stream) {}\n) and on (job, stream) {})",
                        band_sum(&s.name, "lower"),
                        band_sum(&s.name, "upper"),
                        band_complete(&s.name)
                    );
                    terms.push((as_cause(expr, d.cause), weight));
                }
            }
            Replicas::SummedRateBelowMin | Replicas::SummedRateAboveMax => {
                for s in &config.streams {
                    let (bound, op) = match d.replicas {
                        Replicas::SummedRateBelowMin => (s.min_rate, "<"),
                        _ => (s.max_rate, ">"),
                    };
                    if let Some(bound) = bound {
                        let expr = format!("({STREAM_RATE}{{stream={}}} {op} {bound})", quote(&s.name));
                        terms.push((as_cause(expr, d.cause), weight));
                    }
                }
            }
        }
    }
    let body: Vec<String> = terms.into_iter().map(|(e, w)| format!("  {e} * 0 + {w}")).collect();
    format!("topk by (job, stream) (1,\n{}\n) > bool 0", body.join("\nor\n"))
}

/// A bound of a stream's band summed over the replicas (each holds its partitions' band).
pub(super) fn band_sum(stream: &str, bound: &str) -> String {
    format!("sum by (job, stream) ({RATE_EXPECTED}{{stream={}, bound=\"{bound}\"}})", quote(stream))
}

/// Every replica holding partitions of the stream has a band: a sum over fewer would
/// judge the whole rate against part of the band.
pub(super) fn band_complete(stream: &str) -> String {
    let s = quote(stream);
    format!(
        "(\n  count by (job, stream) ({RATE_EXPECTED}{{stream={s}, bound=\"expected\"}})\n  == on (job, stream)\n  \
         count by (job, stream) ({S_PARTITIONS}{{stream={s}}} > 0)\n)"
    )
}

/// Where the summed rate stands in the summed band: `(rate − expected) / (upper −
/// expected)` at or above it, `(rate − expected) / (expected − lower)` below.
pub(super) fn anomaly_score_expr(stream: &str) -> String {
    let rate = format!("{STREAM_RATE}{{stream={}}}", quote(stream));
    let (lower, expected, upper) = (band_sum(stream, "lower"), band_sum(stream, "expected"), band_sum(stream, "upper"));
    format!(
        "(\n  ({rate} - on (job, stream) {expected})\n  / on (job, stream) ({upper} - on (job, stream) {expected})\n  \
         and on (job, stream) ({rate} >= on (job, stream) {expected})\nor\n  \
         ({rate} - on (job, stream) {expected})\n  / on (job, stream) ({expected} - on (job, stream) {lower})\n)\n\
         and on (job, stream) {}",
        band_complete(stream)
    )
}

/// The pair cause expression (see `pipewatch_core::diagnosis::pair_cause`): the side
/// behind by the sign of the sync lag; with none, the cause first in the diagnosis order
/// (weights from the table, the leader's a little higher on a tie); with both sides `ok`
/// and a `join`, `join_incomplete` (on the follower) while a value or all the leader's
/// records judged `min_judged` times across the replicas are under `incomplete_below`
/// (`JoinSnapshot::incomplete`); else the follower's `ok`.
pub(super) fn pair_cause_expr(leader: &str, follower: &str, pair: &str, join: Option<&JoinSpec>) -> String {
    let (l, f, p) = (quote(leader), quote(follower), quote(pair));
    let faulty = |side: &str| format!("max by (job, stream, cause) ({STREAM_CAUSE}{{stream={side}, cause!=\"ok\"}})");
    let mut ranked = Vec::new();
    for (i, d) in ORDER.iter().enumerate().filter(|(_, d)| d.cause != Cause::Ok) {
        let weight = 2 * (ORDER.len() - i);
        for (side, w) in [(&l, weight + 1), (&f, weight)] {
            ranked.push(format!("    {STREAM_CAUSE}{{stream={side}, cause=\"{}\"}} * {w}", d.name));
        }
    }
    let incomplete = join.map_or_else(String::new, |j| {
        format!(
            "or on (job)\n(\n  label_replace(label_replace(\n    count by (job) (\n      {JOIN_COMPLETENESS}{{pair={p}}} < {}\n      \
             and on (job, pair, segment, value) ({JOIN_JUDGED}{{pair={p}}} >= {})\n    ) * 0 + 1,\n  \
             \"stream\", {f}, \"\", \"\"), \"cause\", \"{}\", \"\", \"\")\n)\n",
            j.incomplete_below,
            j.min_judged.max(1),
            join_incomplete::CAUSE
        )
    });
    format!(
        "(\n  {}\n  and on (job) ({SYNC_LAG}{{pair={p}}} > 0)\n)\nor on (job)\n(\n  {}\n  and on (job) ({SYNC_LAG}{{pair={p}}} < 0)\n)\n\
         or on (job)\n(\n  topk by (job) (1,\n{}\n  ) > bool 0\n)\n{incomplete}or on (job)\nmax by (job, stream, cause) ({STREAM_CAUSE}{{stream={f}}})",
        faulty(&f),
        faulty(&l),
        ranked.join("\n    or\n")
    )
}

/// A consumer's cause: the first of the consumer diagnosis table that any replica reports
/// (offsets and their movement are the group's, the same for every replica).
pub(super) fn consumer_cause_expr() -> String {
    let terms: Vec<String> = CONSUMER_ORDER
        .iter()
        .enumerate()
        .map(|(i, d)| {
            format!(
                "  label_replace((max by (job, consumer, group) ({C_CAUSE}{{cause=\"{}\"}}) == 1), \"cause\", \"{}\", \"\", \"\") * 0 + {}",
                d.name,
                d.name,
                CONSUMER_ORDER.len() - i
            )
        })
        .collect();
    format!("topk by (job, consumer) (1,\n{}\n) > bool 0", terms.join("\nor\n"))
}
