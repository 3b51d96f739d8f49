//! The last hour of a few figures, one sample per tick, for the status page's charts:
//! each stream's rate and freshness lag, each pair's sync lag, each consumer's lag
//! seconds. Bounded: at most [`MAX_SAMPLES`] per series (an hour of one-second ticks),
//! nothing older than [`WINDOW_MS`]. A stream with a baseline draws its rate inside the
//! band expected at each moment.

use std::collections::VecDeque;
use std::fmt::Write as _;

use pipewatch_core::time::format_human;
use pipewatch_core::{Millis, Snapshot};

/// How far back the charts go.
pub const WINDOW_MS: Millis = 3_600_000;
/// Samples kept per series at most.
pub const MAX_SAMPLES: usize = 3600;
/// Points a chart draws at most (the samples are thinned evenly, the last one kept).
const MAX_POINTS: usize = 360;

/// What a series measures: its unit decides how values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    PerSecond,
    Seconds,
}

/// `(at, value, band)`: the band `(lower, upper)` where the series has one.
type Sample = (Millis, f64, Option<(f64, f64)>);

#[derive(Debug)]
struct Series {
    /// `rate:orders`, `freshness:orders`, `sync_lag:orders_behaviour`, `consumer_lag:analytics`.
    id: String,
    title: String,
    unit: Unit,
    samples: VecDeque<Sample>,
}

/// The charts' data.
#[derive(Debug, Default)]
pub struct History {
    series: Vec<Series>,
}

impl History {
    /// One tick's figures; series appear with their first value, samples older than the
    /// window go.
    pub fn record(&mut self, s: &Snapshot) {
        let at = s.at_ms;
        for st in &s.streams {
            let band = st.baseline.and_then(|b| b.band).map(|b| (b.lower, b.upper));
            self.push(
                format!("rate:{}", st.name),
                || format!("{} rate", st.name),
                Unit::PerSecond,
                at,
                st.rate_records_per_second.map(|r| (r, band)),
            );
            self.push(
                format!("freshness:{}", st.name),
                || format!("{} freshness lag", st.name),
                Unit::Seconds,
                at,
                st.freshness_lag_seconds.map(|v| (v, None)),
            );
        }
        for p in &s.pairs {
            self.push(
                format!("sync_lag:{}", p.name),
                || format!("{} sync lag", p.name),
                Unit::Seconds,
                at,
                p.sync_lag_seconds.map(|v| (v, None)),
            );
        }
        for c in &s.consumers {
            let lag = c.streams.iter().filter_map(|st| st.max_lag_seconds).reduce(f64::max).map(|v| (v, None));
            self.push(format!("consumer_lag:{}", c.name), || format!("{} lag", c.name), Unit::Seconds, at, lag);
        }
        for series in &mut self.series {
            while series.samples.front().is_some_and(|(t, _, _)| *t < at - WINDOW_MS)
                || series.samples.len() > MAX_SAMPLES
            {
                series.samples.pop_front();
            }
        }
    }

    fn push(
        &mut self,
        id: String,
        title: impl FnOnce() -> String,
        unit: Unit,
        at: Millis,
        value: Option<(f64, Option<(f64, f64)>)>,
    ) {
        let Some((v, band)) = value.filter(|(v, _)| v.is_finite()) else { return };
        let band = band.filter(|(l, u)| l.is_finite() && u.is_finite());
        let i = self.series.iter().position(|s| s.id == id).unwrap_or_else(|| {
            self.series.push(Series { id, title: title(), unit, samples: VecDeque::new() });
            self.series.len() - 1
        });
        self.series[i].samples.push_back((at, v, band));
    }

    /// The charts as inline SVG (no script, no external asset), `esc` escaping text.
    pub fn render(&self, out: &mut String, esc: impl Fn(&str) -> String) {
        if self.series.iter().all(|s| s.samples.is_empty()) {
            return;
        }
        out.push_str("<h2>Last hour</h2><div class=charts>");
        for s in self.series.iter().filter(|s| !s.samples.is_empty()) {
            chart(out, s, &esc);
        }
        out.push_str("</div>");
    }
}

/// One chart: a polyline over the window (time on x, 0..max on y), the band behind it
/// as a shaded polygon where there is one, and its caption.
fn chart(out: &mut String, s: &Series, esc: &impl Fn(&str) -> String) {
    const W: f64 = 300.0;
    const H: f64 = 60.0;
    let Some(&(last_at, last, last_band)) = s.samples.back() else { return };
    let n = s.samples.len();
    let step = n.div_ceil(MAX_POINTS).max(1);
    // evenly thinned, the newest sample always drawn
    let picked: Vec<Sample> =
        s.samples.iter().enumerate().filter(|(i, _)| (n - 1 - i).is_multiple_of(step)).map(|(_, p)| *p).collect();
    let max = s.samples.iter().map(|(_, v, b)| b.map_or(*v, |(_, u)| v.max(u))).fold(0.0_f64, f64::max);
    // the time since the first sample, an hour at most: a new pipewatch's charts fill
    // the width too
    let from = s.samples.front().map_or(last_at, |(t, _, _)| *t).max(last_at - WINDOW_MS);
    let span = (last_at - from).max(1);
    let x = |t: Millis| (t - from) as f64 / span as f64 * W;
    let y = |v: f64| if max > 0.0 { H - 2.0 - v.max(0.0) / max * (H - 4.0) } else { H - 2.0 };
    let points: Vec<String> = picked.iter().map(|(t, v, _)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
    // the band: upper edge left to right, lower edge back
    let banded: Vec<(Millis, (f64, f64))> = picked.iter().filter_map(|(t, _, b)| b.map(|b| (*t, b))).collect();
    let mut band = String::new();
    if !banded.is_empty() {
        let upper = banded.iter().map(|(t, (_, u))| format!("{:.1},{:.1}", x(*t), y(*u)));
        let lower = banded.iter().rev().map(|(t, (l, _))| format!("{:.1},{:.1}", x(*t), y(*l)));
        let _ = write!(
            band,
            "<polygon class=band data-points={} fill=#bbf7d0 stroke=none points=\"{}\"/>",
            banded.len(),
            upper.chain(lower).collect::<Vec<_>>().join(" ")
        );
    }
    let expected =
        last_band.map_or_else(String::new, |(l, u)| format!(" <small>(expected {:.1}–{:.1}/s)</small>", l, u));
    let show = |v: f64| match s.unit {
        Unit::PerSecond => format!("{v:.1}/s"),
        Unit::Seconds => format_human(v),
    };
    let _ = write!(
        out,
        "<figure><svg viewBox=\"0 0 {W} {H}\" width={W} height={H} role=img data-series=\"{}\" data-points={} \
         data-last=\"{last}\"><rect width={W} height={H} fill=#f8f8f8 />{band}<polyline fill=none stroke=#2563eb \
         stroke-width=1.5 points=\"{}\"/></svg><figcaption>{}: {}{expected} <small>(max {} over the last {})</small></figcaption></figure>",
        esc(&s.id),
        picked.len(),
        points.join(" "),
        esc(&s.title),
        show(last),
        show(max),
        format_human(span as f64 / 1000.0),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipewatch_core::spec::StartPosition;

    const T0: Millis = 1_795_375_975_000;

    /// A monitor of one stream whose log end grows ten records a second.
    struct Ticks(pipewatch_core::Monitor, i64);

    impl Ticks {
        fn new() -> Self {
            let config = crate::config::parse(
                "[kafka]\nbootstrap_servers = \"localhost:9092\"\n[[stream]]\nname = \"orders\"\ntopic = \"orders\"\n\
                 event_time = { field = \"/ts\", format = \"epoch_millis\" }\n[monitor]\nrate_window = \"2s\"\n",
            )
            .unwrap();
            let mut m = pipewatch_core::Monitor::new(config.settings, config.streams, config.pairs);
            m.set_kafka_status(pipewatch_core::KafkaStatus::Up, None);
            m.assign_partition(0, 0, 0, StartPosition::At(0), T0 - 1000);
            m.log_end(0, 0, 0, T0 - 1000);
            m.tick(T0 - 1000);
            Self(m, 0)
        }

        fn at(&mut self, at: Millis) -> Snapshot {
            self.1 = (at - T0 + 1000) / 100;
            self.0.log_end(0, 0, self.1, at);
            self.0.tick(at)
        }
    }

    #[test]
    fn an_hour_at_most_and_every_sample_a_point_until_there_are_too_many() {
        let mut h = History::default();
        let mut ticks = Ticks::new();
        for i in 0..10 {
            h.record(&ticks.at(T0 + i * 1000));
        }
        let rate = &h.series[0];
        assert_eq!((rate.id.as_str(), rate.samples.len()), ("rate:orders", 10));
        assert_eq!(rate.samples.back().map(|s| (s.1, s.2)), Some((10.0, None)));
        let mut page = String::new();
        h.render(&mut page, |s| s.to_string());
        assert!(page.contains("data-series=\"rate:orders\" data-points=10 data-last=\"10\""), "{page}");
        // two hours of ticks: the last hour stays, thinned to MAX_POINTS on the page
        for i in 0..7200 {
            h.record(&ticks.at(T0 + 20_000 + i * 1000));
        }
        let rate = &h.series[0];
        assert!(rate.samples.len() <= MAX_SAMPLES + 1, "{}", rate.samples.len());
        assert!(rate.samples.front().unwrap().0 >= T0 + 20_000 + 7199 * 1000 - WINDOW_MS);
        let mut page = String::new();
        h.render(&mut page, |s| s.to_string());
        assert!(page.contains(&format!("data-points={MAX_POINTS} ")), "thinned: {}", &page[..400]);
    }
}
