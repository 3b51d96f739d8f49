//! `GET /`: the status page for people (refreshes every 5 s): alerts, the charts of the
//! last hour, pairs, consumers, streams, segments, partitions. Every value it shows is
//! escaped; no script, no external asset.

use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Html;
use pipewatch_core::alert::{AlertState, AlertStatus};
use pipewatch_core::diagnosis::{ConsumerCause, PairCause};
use pipewatch_core::snapshot::BaselineState;
use pipewatch_core::time::{format_human, format_rfc3339};
use pipewatch_core::watermark::sync_lag_phrase;
use pipewatch_core::{Cause, KafkaStatus, Snapshot};

use super::readiness::not_ready;
use super::AppState;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn opt_human(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), format_human)
}

pub(crate) async fn status_page(State(state): State<AppState>) -> Html<String> {
    let tick = state.tick.borrow().clone();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=utf-8><meta http-equiv=refresh content=5>\
         <title>pipewatch</title><style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}\
         th{{background:#f3f3f3}}.ok{{color:#17803d}}.warn{{color:#b45309}}.fault{{color:#b91c1c;font-weight:bold}}\
         small{{color:#666}}.charts{{display:flex;flex-wrap:wrap;gap:1em}}figure{{margin:0}}</style></head><body><h1>pipewatch</h1>"
    );
    let Some(tick) = tick else {
        h.push_str("<p>Starting…</p></body></html>");
        return Html(h);
    };
    let s = &tick.snapshot;
    let why = not_ready(Some(s));
    let _ = write!(
        h,
        "<p>Kafka <b>{}</b> at <code>{}</code> · {} · as of {} · <a href=/metrics>/metrics</a> · \
         <a href=/api/v1/status>/api/v1/status</a></p>",
        match s.kafka {
            KafkaStatus::Up => "<span class=ok>up</span>",
            KafkaStatus::Down => "<span class=fault>unreachable</span>",
            KafkaStatus::Unknown => "<span class=warn>not reached yet</span>",
        },
        esc(&state.config.source.bootstrap_servers),
        why.map_or_else(
            || "<span class=ok>ready</span>".to_string(),
            |w| format!("<span class=warn>not ready: {}</span>", esc(&w))
        ),
        format_rfc3339(s.at_ms),
    );
    alerts_table(&mut h, &tick.alerts);
    state.history.lock().unwrap_or_else(std::sync::PoisonError::into_inner).render(&mut h, esc);
    pairs_table(&mut h, s);
    joins_table(&mut h, s);
    consumers_table(&mut h, s);
    streams_table(&mut h, s);
    connectors_table(&mut h, s);
    segments_table(&mut h, s);
    partitions_table(&mut h, s);
    h.push_str("</body></html>");
    Html(h)
}

/// The CSS class of a cause: a fault, ok, or a normal state worth a look.
fn class(c: Cause) -> &'static str {
    if c.is_fault() {
        "fault"
    } else if c == Cause::Ok {
        "ok"
    } else {
        "warn"
    }
}

fn alerts_table(h: &mut String, alerts: &[AlertStatus]) {
    if !alerts.is_empty() {
        h.push_str(
            "<h2>Alerts</h2><table><tr><th>alert</th><th>state</th><th>target</th><th>cause</th>\
             <th>summary</th><th>impact</th></tr>",
        );
        for a in alerts {
            let (state, class) = match a.state {
                AlertState::Firing { since_ms } => (format!("firing since {}", format_rfc3339(since_ms)), "fault"),
                AlertState::Pending { since_ms } => (format!("pending since {}", format_rfc3339(since_ms)), "warn"),
                AlertState::Inactive => match a.held_back {
                    Some(c) => (format!("held back ({})", c.as_str()), "warn"),
                    None => ("inactive".to_string(), "ok"),
                },
            };
            let annotation =
                |name: &str| a.event.as_ref().and_then(|e| e.annotation(name)).map(esc).unwrap_or_default();
            let _ = write!(
                h,
                "<tr><td>{} <small>({})</small></td><td class={class}>{state}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td></tr>",
                esc(&a.name),
                esc(&a.severity),
                esc(&a.target),
                a.cause.as_str(),
                annotation("summary"),
                annotation("impact"),
            );
        }
        h.push_str("</table>");
    }
}

fn pairs_table(h: &mut String, s: &Snapshot) {
    if !s.pairs.is_empty() {
        h.push_str(
            "<h2>Pairs</h2><table><tr><th>pair</th><th>leader → follower</th><th>sync lag</th><th>cause</th></tr>",
        );
        for p in &s.pairs {
            let lag = match p.sync_lag_seconds {
                Some(v) => sync_lag_phrase(&p.leader, &p.follower, v).map_or_else(|| "in sync".into(), |t| esc(&t)),
                None => "–".into(),
            };
            let hint = p
                .timezone_hint
                .as_deref()
                .map_or_else(String::new, |h| format!("<br><small class=warn>{}</small>", esc(h)));
            // join_incomplete: a fault of the pair, naming the values
            let (css, detail) = match p.cause {
                PairCause::Stream(c) => (class(c), String::new()),
                PairCause::JoinIncomplete => {
                    let named: Vec<String> =
                        p.join.iter().flat_map(|j| &j.incomplete).map(|v| esc(&v.phrase())).collect();
                    ("fault", format!("<br><small>{}</small>", named.join("; ")))
                }
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{} → {}</td><td>{lag}{hint}</td><td class={css}>{}{detail}</td></tr>",
                esc(&p.name),
                esc(&p.leader),
                esc(&p.follower),
                p.cause.as_str()
            );
        }
        h.push_str("</table>");
    }
}

/// The Kafka Connect clusters and their connectors, next to the streams they write and
/// the consumers they are.
fn connectors_table(h: &mut String, s: &Snapshot) {
    if s.connect.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Kafka Connect</h2><table><tr><th>connect</th><th>connector</th><th>type</th><th>state</th>\
         <th>tasks</th><th>streams</th><th>error</th></tr>",
    );
    for k in &s.connect {
        if !k.answers() {
            let _ = write!(
                h,
                "<tr><td>{}</td><td colspan=6 class=fault>{} does not answer: {}{}</td></tr>",
                esc(&k.name),
                esc(&k.url),
                esc(k.error.as_deref().unwrap_or("not polled yet")),
                if k.connectors.is_empty() { "" } else { " (the connectors below as last answered)" }
            );
        }
        for c in &k.connectors {
            let issue = c.issue(&k.name);
            let class = match issue.as_ref().map(|i| i.fault) {
                None => "ok",
                Some(pipewatch_core::connect::ConnectorFault::Paused) => "warn",
                Some(_) => "fault",
            };
            let tasks: Vec<String> = c.tasks.iter().map(|t| format!("{} {}", t.id, t.state.as_str())).collect();
            let streams: Vec<&str> = s
                .streams
                .iter()
                .filter(|st| st.topics.iter().any(|t| c.writes(&t.name) || c.reads(&t.name)))
                .map(|st| st.name.as_str())
                .collect();
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class={class}>{}</td><td>{}</td><td>{}</td><td><small>{}</small></td></tr>",
                esc(&k.name),
                esc(&c.name),
                c.kind.as_str(),
                c.state.as_str(),
                esc(&tasks.join(", ")),
                esc(&streams.join(", ")),
                esc(&issue.and_then(|i| i.error.map(|e| format!("task {}: {e}", i.task.map_or("–".into(), |t| t.to_string())))).unwrap_or_default()),
            );
        }
    }
    h.push_str("</table>");
}

fn consumers_table(h: &mut String, s: &Snapshot) {
    if s.consumers.is_empty() {
        return;
    }
    h.push_str(
        "<h2>Consumers</h2><table><tr><th>consumer (group)</th><th>cause</th><th>stream</th><th>lag</th>\
         <th>records waiting</th><th>processed up to</th><th>sync lag as it sees it</th></tr>",
    );
    for c in &s.consumers {
        let class = match c.cause {
            ConsumerCause::Ok => "ok",
            cause if cause.is_fault() => "fault",
            _ => "warn",
        };
        let mut why = c.cause.explain().to_string();
        if let Some(e) = &c.error {
            why = format!("{why}: {e}");
        }
        // its sink connector's fault, whichever cause comes first
        if let Some(issue) = &c.connector {
            why = format!("{why}: {}", issue.describe());
        }
        let sync: Vec<String> = c
            .pairs
            .iter()
            .map(|p| match p.sync_lag_seconds {
                Some(v) => sync_lag_phrase(&p.leader, &p.follower, v).unwrap_or_else(|| format!("{} in sync", p.pair)),
                None => format!("{}: –", p.pair),
            })
            .collect();
        for (i, st) in c.streams.iter().enumerate() {
            let first = i == 0;
            let _ = write!(
                h,
                "<tr><td>{}</td><td class={class}>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                if first { format!("{} <small>({})</small>", esc(&c.name), esc(&c.group)) } else { String::new() },
                if first { format!("{}<br><small>{}</small>", c.cause.as_str(), esc(&why)) } else { String::new() },
                esc(&st.stream),
                opt_human(st.max_lag_seconds),
                st.lag_records,
                st.watermark_ms.map_or_else(|| "–".into(), format_rfc3339),
                if first { esc(&sync.join("; ")) } else { String::new() },
            );
        }
    }
    h.push_str("</table>");
}

fn streams_table(h: &mut String, s: &Snapshot) {
    h.push_str(
        "<h2>Streams</h2><table><tr><th>stream</th><th>topic</th><th>cause</th><th>freshness lag</th>\
         <th>watermark</th><th>silence</th><th>rate (records/s)</th><th>expected (records/s)</th>\
         <th>median delay</th><th>backlog</th></tr>",
    );
    for st in &s.streams {
        let explain = match st.cause {
            Cause::TopicMissing if st.topics.len() == 1 => {
                format!("topic <code>{}</code> does not exist on the cluster", esc(&st.topic))
            }
            Cause::TopicMissing => format!("{} on the cluster", esc(&st.missing_phrase())),
            Cause::AccessDenied => format!(
                "the cluster denies pipewatch <code>{}</code>",
                esc(st.access_denied.as_deref().unwrap_or("a right"))
            ),
            Cause::SegmentSilent => format!(
                "no records of <code>{}</code> for over {} while the stream flows: one collection path stopped",
                esc(st.segment_silent.as_deref().unwrap_or("a segment")),
                format_human(st.max_silence_seconds)
            ),
            Cause::VolumeAnomaly => {
                format!("{} (from the topic's history)", esc(&st.cause_detail().unwrap_or_default()))
            }
            Cause::ConnectorFailed | Cause::ConnectorUnassigned | Cause::ConnectorPaused => format!(
                "{}<br><small class=warn>{}</small>",
                st.cause.explain(),
                esc(&st.cause_detail().unwrap_or_default())
            ),
            Cause::SchemaRegistryUnreachable => format!(
                "the schema registry does not answer: {}; nothing is lost, reading resumes when it answers",
                esc(st.schema_registry.as_deref().unwrap_or("records wait for their schema"))
            ),
            c => c.explain().to_string(),
        };
        // the writer schemas that cannot give the event time, next to the cause
        let problems: Vec<&str> = st.schemas.iter().filter_map(|x| x.problem.as_deref()).collect();
        let explain = if problems.is_empty() {
            explain
        } else {
            format!("{explain}<br><small class=warn>{}</small>", esc(&problems.join("; ")))
        };
        // the time-zone question, next to the cause
        let explain = match &st.timezone_hint {
            Some(hint) => format!("{explain}<br><small class=warn>{}</small>", esc(hint)),
            None => explain,
        };
        let expected = match st.baseline {
            Some(b) => match (b.state, b.band) {
                (_, Some(band)) => format!(
                    "{:.1} <small>({:.1}–{:.1}, {}, {} past hours)</small>",
                    band.expected,
                    band.lower,
                    band.upper,
                    band.slot.as_str(),
                    band.samples
                ),
                (BaselineState::Learning, _) => "<small>learning the history…</small>".to_string(),
                _ => format!("<small>not enough history ({} hours)</small>", b.history_hours),
            },
            None => match (st.min_rate, st.max_rate) {
                (None, None) => "–".to_string(),
                (min, max) => format!(
                    "<small>{}–{}</small>",
                    min.map_or_else(|| "0".into(), |v| v.to_string()),
                    max.map_or_else(|| "∞".into(), |v| v.to_string())
                ),
            },
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td class={}>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{expected}</td><td>{}</td><td>{}</td></tr>",
            esc(&st.name),
            topics_cell(st),
            class(st.cause),
            st.cause.as_str(),
            explain,
            opt_human(st.freshness_lag_seconds),
            st.watermark_ms.map_or_else(|| "–".into(), format_rfc3339),
            opt_human(st.silence_seconds),
            st.rate_records_per_second.map_or_else(|| "–".into(), |r| format!("{r:.1}")),
            opt_human(st.median_record_delay_seconds),
            st.backlog_records,
        );
    }
    h.push_str("</table>");
}

/// Each join's completeness: for all the leader's records and per segment value, what was
/// judged over the window, its ratio beside the usual level; what waits and how old.
fn joins_table(h: &mut String, s: &Snapshot) {
    if s.pairs.iter().all(|p| p.join.is_none()) {
        return;
    }
    h.push_str(
        "<h2>Join completeness</h2><table><tr><th>pair</th><th>segment</th><th>value</th>\
         <th>matched / judged (window)</th><th>ratio</th><th>usual</th><th>unjudged</th><th>pending</th></tr>",
    );
    let pct = |r: Option<f64>| r.map_or_else(|| "–".into(), |r| format!("{:.0} %", r * 100.0));
    for p in &s.pairs {
        let Some(j) = &p.join else { continue };
        let pending = match j.pending_oldest_seconds {
            Some(age) => format!("{} (oldest {})", j.pending, format_human(age)),
            None => j.pending.to_string(),
        };
        let all = std::iter::once(("", "all", &j.window, j.ratio, j.usual, j.total.unjudged));
        let values = j
            .values
            .iter()
            .map(|v| (v.segment.as_str(), v.value.as_str(), &v.window, v.ratio, v.usual, v.total.unjudged));
        for (segment, value, w, ratio, usual, unjudged) in all.chain(values) {
            // well below its usual level (or none matched at all) stands out
            let low = ratio.is_some_and(|r| usual.map_or(r == 0.0, |u| r < u / 2.0));
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{} / {}</td><td class='{}'>{}</td><td>{}</td><td>{unjudged}</td><td>{pending}</td></tr>",
                esc(&p.name),
                esc(segment),
                esc(value),
                w.matched,
                w.matched + w.missing,
                if low { "fault" } else { "" },
                pct(ratio),
                pct(usual),
            );
        }
    }
    h.push_str("</table>");
    for p in s.pairs.iter().filter(|p| p.join.as_ref().is_some_and(|j| j.co_partitioned == Some(false))) {
        let _ = write!(
            h,
            "<p class='fault'>{}: {} and {} are not co-partitioned here (partition counts differ, or this replica \
             has different partitions of each): its records are unjudged; <code>partitions = \"all\"</code> reads \
             every follower partition</p>",
            esc(&p.name),
            esc(&p.leader),
            esc(&p.follower),
        );
    }
}

fn segments_table(h: &mut String, s: &Snapshot) {
    if s.streams.iter().all(|st| st.segments.is_empty()) {
        return;
    }
    h.push_str(
        "<h2>Segments</h2><table><tr><th>stream</th><th>segment</th><th>value</th><th>records</th><th>silence</th>\
         <th>state</th></tr>",
    );
    for st in &s.streams {
        for g in &st.segments {
            for v in &g.values {
                let (class, state) = match (v.silent, v.judged, v.silence_seconds) {
                    (true, _, _) => ("fault", "silent"),
                    (_, true, _) => ("ok", "flowing"),
                    (_, _, None) => ("", "not seen lately"),
                    _ => ("", "too rare to judge"),
                };
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class='{class}'>{state}</td></tr>",
                    esc(&st.name),
                    esc(&g.name),
                    esc(&v.value),
                    v.records,
                    opt_human(v.silence_seconds),
                );
            }
            if g.overflow > 0 {
                let _ = write!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td colspan=4><small>{} records past the cap of distinct values, counted as <code>other</code></small></td></tr>",
                    esc(&st.name),
                    esc(&g.name),
                    g.overflow
                );
            }
        }
    }
    h.push_str("</table>");
}

fn partitions_table(h: &mut String, s: &Snapshot) {
    h.push_str(
        "<h2>Partitions</h2><table><tr><th>stream</th><th>partition</th><th>watermark</th><th>silence</th>\
        <th>log end</th><th>position</th><th>backlog</th><th>records</th><th>invalid</th><th>gaps</th></tr>",
    );
    for st in &s.streams {
        for p in &st.partitions {
            let invalid: Vec<String> =
                p.invalid.iter().filter(|(_, n)| **n > 0).map(|(r, n)| format!("{r}: {n}")).collect();
            let silence_class = if p.gap_open_since_ms.is_some() { "fault" } else { "" };
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class='{silence_class}'>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&st.name),
                p.partition,
                p.watermark_ms.map_or_else(|| "–".into(), format_rfc3339),
                opt_human(p.silence_seconds),
                p.log_end_offset.map_or_else(|| "–".into(), |v| v.to_string()),
                p.position_offset.map_or_else(|| "–".into(), |v| v.to_string()),
                p.backlog_records.map_or_else(|| "–".into(), |v| v.to_string()),
                p.records,
                if invalid.is_empty() { "0".into() } else { invalid.join(", ") },
                p.gaps,
            );
        }
    }
    h.push_str("</table>");
}

/// A stream's topics as the status page shows them: the configured spelling; for a
/// pattern the topics it matched; the missing ones of several named.
fn topics_cell(st: &pipewatch_core::snapshot::StreamSnapshot) -> String {
    let mut cell = esc(&st.topic);
    let read = st.topics.iter().map(|t| &*t.name).collect::<Vec<_>>().join(", ");
    if !read.is_empty() && read != st.topic {
        cell.push_str(&format!("<br><small>{}</small>", esc(&read)));
    }
    if !st.missing_topics.is_empty() && st.missing_topics.len() < st.topics.len() {
        cell.push_str(&format!("<br><small>missing: {}</small>", esc(&st.missing_topics.join(", "))));
    }
    cell
}
