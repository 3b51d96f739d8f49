//! Volume judged against its own history: the records written per hour, learned from
//! the broker's offsets at each hour boundary (Kafka keeps them for the topic's
//! retention), give each stream an expected rate for the hour of the week — of the day
//! while there is less than [`WEEK_SLOTS_FROM_HOURS`] of history — as a band around the
//! median of the same slot's past hours, `sensitivity` robust deviations (MAD × 1.4826)
//! wide, never narrower than `tolerance` × the expected rate nor than `floor` records/s.
//!
//! The hour being judged is never in its own baseline: only complete hours before the
//! current one count. The band at a moment is interpolated between the slots' centres,
//! so a rate that ramps up through the morning is judged against a ramp, not a staircase.

use serde::Serialize;

use crate::time::Millis;

pub const HOUR_MS: Millis = 3_600_000;
const HOURS_PER_DAY: i64 = 24;
const HOURS_PER_WEEK: i64 = 168;
/// Slots are hours of the week once the history holds this many complete hours (13
/// days: two weeks of retention less the partial hours at its edges), of the day before.
pub const WEEK_SLOTS_FROM_HOURS: usize = 13 * 24;
/// MAD × this estimates the standard deviation of normally distributed rates.
const MAD_TO_SIGMA: f64 = 1.4826;

/// A stream's baseline, as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineSpec {
    /// How far back the history is learned.
    pub history_ms: Millis,
    /// The band's half-width in robust standard deviations.
    pub sensitivity: f64,
    /// The band is at least this share of the expected rate on either side.
    pub tolerance: f64,
    /// … and at least this many records/s (so tiny absolute changes never alert); > 0.
    pub floor: f64,
}

/// The hour index of a moment (hours since the epoch).
pub fn hour_of(at: Millis) -> i64 {
    at.div_euclid(HOUR_MS)
}

/// An offset not known (offsets are never negative): 8 bytes a boundary, not 16.
const UNKNOWN: i64 = -1;

/// One partition's offsets at hour boundaries: `offsets[i]` is the first offset written
/// at or after the start of hour `first_hour + i` ([`UNKNOWN`] where not known).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionHistory {
    pub first_hour: i64,
    offsets: Vec<i64>,
    /// The first hour whose records are all retained: after the first boundary with
    /// records before it (earlier hours may be partly deleted or predate the topic).
    pub retained_from: Option<i64>,
    /// Records were deleted from the partition (its log start is past 0): its
    /// `retained_from` bounds the stream's history.
    pub truncated: bool,
}

impl PartitionHistory {
    /// From the broker's answers: the log start and, per boundary hour from `first_hour`,
    /// the offset by time (`None`: no record at or after it, so the log end `log_end`).
    pub fn from_offsets(first_hour: i64, log_start: i64, log_end: i64, by_time: &[Option<i64>]) -> Self {
        let offsets: Vec<i64> = by_time.iter().map(|o| o.unwrap_or(log_end).max(log_start)).collect();
        let retained_from = offsets.iter().position(|&o| o > log_start).map(|i| first_hour + i as i64);
        Self { first_hour, offsets, retained_from, truncated: log_start > 0 }
    }

    /// The boundary after the last one known.
    pub fn next_hour(&self) -> i64 {
        self.first_hour + self.offsets.len() as i64
    }

    /// The offset at the start of `hour` (the log end as known then; `None`: not known),
    /// hours skipped in between unknown; the oldest boundaries go beyond `keep` of them.
    pub fn push(&mut self, hour: i64, offset: Option<i64>, keep: usize) {
        while self.next_hour() < hour {
            self.offsets.push(UNKNOWN);
        }
        if self.next_hour() == hour {
            self.offsets.push(offset.filter(|&o| o >= 0).unwrap_or(UNKNOWN));
            if let (None, Some(offset)) = (self.retained_from, offset) {
                if self.offsets.iter().any(|&o| o != UNKNOWN && o < offset) {
                    self.retained_from = Some(hour);
                }
            }
        }
        let excess = self.offsets.len().saturating_sub(keep);
        if excess > 0 {
            self.offsets.drain(..excess);
            self.first_hour += excess as i64;
        }
    }

    /// The offset at the start of `hour`, if known.
    pub fn at(&self, hour: i64) -> Option<i64> {
        let i = usize::try_from(hour - self.first_hour).ok()?;
        self.offsets.get(i).copied().filter(|&o| o != UNKNOWN)
    }

    /// Records written in `hour`, when both its boundaries are known.
    fn written(&self, hour: i64) -> Option<i64> {
        Some((self.at(hour + 1)? - self.at(hour)?).max(0))
    }
}

/// A stream's records written per hour, summed over its partitions: `rates[i]` is the
/// mean rate (records/s) of hour `first_hour + i`, `None` where not known for every
/// partition or before the stream's retained history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HourlyRates {
    pub first_hour: i64,
    pub rates: Vec<Option<f64>>,
}

impl HourlyRates {
    /// Sums the partitions' hours. An hour counts from the first the stream's records are
    /// all retained: the earliest partition's first retained hour, but no earlier than
    /// any partition that lost records to retention.
    pub fn sum<'a>(partitions: impl IntoIterator<Item = &'a PartitionHistory>) -> Self {
        let parts: Vec<&PartitionHistory> = partitions.into_iter().collect();
        let (Some(first), Some(end)) =
            (parts.iter().map(|p| p.first_hour).min(), parts.iter().map(|p| p.next_hour() - 1).max())
        else {
            return Self::default();
        };
        let earliest = parts.iter().filter_map(|p| p.retained_from).min();
        let truncated = parts.iter().filter(|p| p.truncated).filter_map(|p| p.retained_from).max();
        let Some(start) = earliest.map(|e| truncated.map_or(e, |t| t.max(e))) else {
            return Self { first_hour: first, rates: Vec::new() };
        };
        let rates = (first..end)
            .map(|h| {
                if h < start {
                    return None;
                }
                let mut sum = 0i64;
                for p in &parts {
                    sum += p.written(h)?;
                }
                Some(sum as f64 / 3600.0)
            })
            .collect();
        Self { first_hour: first, rates }
    }

    /// Complete hours known.
    pub fn known(&self) -> usize {
        self.rates.iter().flatten().count()
    }

    fn rate(&self, hour: i64) -> Option<f64> {
        let i = usize::try_from(hour - self.first_hour).ok()?;
        *self.rates.get(i)?
    }
}

/// Which hours a slot gathers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    HourOfWeek,
    HourOfDay,
}

impl Slot {
    fn period(self) -> i64 {
        match self {
            Slot::HourOfWeek => HOURS_PER_WEEK,
            Slot::HourOfDay => HOURS_PER_DAY,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::HourOfWeek => "hour of the week",
            Slot::HourOfDay => "hour of the day",
        }
    }
}

/// The expected rate at a moment and the band around it (records/s).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Band {
    pub lower: f64,
    pub expected: f64,
    pub upper: f64,
    pub slot: Slot,
    /// Past hours of the slot(s) the band is drawn from.
    pub samples: usize,
}

impl Band {
    /// Where `rate` stands: 0 at the expected rate, ±1 at the band's edges (negative
    /// below); beyond ±1 it is outside the band.
    pub fn score(&self, rate: f64) -> f64 {
        let (edge, sign) = if rate < self.expected { (self.lower, -1.0) } else { (self.upper, 1.0) };
        let width = (edge - self.expected).abs();
        if width > 0.0 {
            (rate - self.expected).abs() / width * sign
        } else {
            0.0
        }
    }
}

/// The median of `values` (not empty); reorders them.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The band of one slot (the slot of `hour`) from the complete hours before `now_hour`.
fn slot_band(history: &HourlyRates, hour: i64, now_hour: i64, slot: Slot, spec: &BaselineSpec) -> Option<Band> {
    let period = slot.period();
    let mut k = hour;
    while k >= now_hour {
        k -= period;
    }
    let mut samples = Vec::new();
    while k >= history.first_hour {
        if let Some(r) = history.rate(k) {
            samples.push(r);
        }
        k -= period;
    }
    if samples.is_empty() {
        return None;
    }
    let expected = median(&mut samples);
    let mut deviations: Vec<f64> = samples.iter().map(|r| (r - expected).abs()).collect();
    let mad = median(&mut deviations);
    let half = (spec.sensitivity * MAD_TO_SIGMA * mad).max(spec.tolerance * expected).max(spec.floor);
    Some(Band { lower: (expected - half).max(0.0), expected, upper: expected + half, slot, samples: samples.len() })
}

/// The band at `at` (the middle of the rate window), judged at `now`: blended between
/// the two slots whose centres are either side of it. `None`: not enough history.
pub fn band_at(history: &HourlyRates, at: Millis, now: Millis, spec: &BaselineSpec) -> Option<Band> {
    let slot = if history.known() >= WEEK_SLOTS_FROM_HOURS { Slot::HourOfWeek } else { Slot::HourOfDay };
    let now_hour = hour_of(now);
    // position in hours, from the centre of the hour before
    let pos = (at - HOUR_MS / 2) as f64 / HOUR_MS as f64;
    let before = pos.floor() as i64;
    let weight = pos - before as f64;
    let a = slot_band(history, before, now_hour, slot, spec);
    let b = slot_band(history, before + 1, now_hour, slot, spec);
    match (a, b) {
        (Some(a), Some(b)) => {
            let mix = |x: f64, y: f64| x * (1.0 - weight) + y * weight;
            Some(Band {
                lower: mix(a.lower, b.lower),
                expected: mix(a.expected, b.expected),
                upper: mix(a.upper, b.upper),
                slot,
                samples: a.samples + b.samples,
            })
        }
        (one, other) => one.or(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: BaselineSpec =
        BaselineSpec { history_ms: 14 * 24 * HOUR_MS, sensitivity: 3.0, tolerance: 0.2, floor: 1.0 };
    /// A Monday, 00:00 UTC.
    const MONDAY: i64 = 1_795_996_800_000 / HOUR_MS;

    /// One partition written `per_hour(h)` records in each hour from `from` to `to`.
    fn written(from: i64, to: i64, per_hour: impl Fn(i64) -> i64) -> PartitionHistory {
        let mut offsets = vec![0];
        let mut total = 0;
        for h in from..to {
            total += per_hour(h);
            offsets.push(total);
        }
        PartitionHistory { first_hour: from, offsets, retained_from: Some(from), truncated: false }
    }

    fn at_hour(h: i64, minutes: i64) -> Millis {
        h * HOUR_MS + minutes * 60_000
    }

    #[test]
    fn offsets_from_the_broker_mark_the_retained_hours() {
        // hours 0..4: nothing before hour 2 (log start 0), boundary 4 after the last record
        let p = PartitionHistory::from_offsets(0, 0, 90, &[Some(0), Some(0), Some(0), Some(40), None]);
        assert_eq!(p.offsets, vec![0, 0, 0, 40, 90]);
        assert_eq!(p.retained_from, Some(3));
        let rates = HourlyRates::sum([&p]);
        assert_eq!(rates.rates[..3], [None, None, None]);
        assert_eq!(rates.rates[3], Some(50.0 / 3600.0));
    }

    #[test]
    fn hour_of_week_median_and_the_hour_judged_is_not_its_own_baseline() {
        // 14 days: Mondays 10 records/s, other days 5; an outlier of 10× a week before
        // the day judged
        let now_hour = MONDAY + 14 * 24 + 10;
        let p = written(MONDAY - 24 * 7, now_hour + 1, |h| {
            if h == now_hour - 168 {
                360_000
            } else if (h - MONDAY).rem_euclid(168) / 24 == 0 {
                36_000
            } else {
                18_000
            }
        });
        let history = HourlyRates::sum([&p]);
        assert!(history.known() >= WEEK_SLOTS_FROM_HOURS);
        let band = band_at(&history, at_hour(now_hour, 30), at_hour(now_hour, 30), &SPEC).unwrap();
        assert_eq!(band.slot, Slot::HourOfWeek);
        // Mondays 10:00 of the three weeks before: 10, 100, 10 records/s; this hour's own
        // 10 is not counted; the band is the tolerance (MAD 0)
        assert_eq!((band.lower, band.expected, band.upper), (8.0, 10.0, 12.0));
        assert_eq!(band.samples, 6);
        assert_eq!((band.score(3.0), band.score(30.0), band.score(10.0)), (-3.5, 10.0, 0.0));
    }

    #[test]
    fn hour_of_day_while_the_history_is_short_and_none_without_it() {
        let now_hour = MONDAY + 30;
        let p = written(MONDAY, now_hour, |h| if h % 24 == 6 { 7200 } else { 3600 });
        let history = HourlyRates::sum([&p]);
        let band = band_at(&history, at_hour(now_hour, 30), at_hour(now_hour, 31), &SPEC).unwrap();
        assert_eq!((band.slot, band.expected), (Slot::HourOfDay, 2.0));
        // one sample: the band is the tolerance, or the floor
        assert_eq!((band.lower, band.upper), (1.0, 3.0));
        let none = HourlyRates::sum([&written(now_hour - 2, now_hour, |_| 3600)]);
        assert_eq!(band_at(&none, at_hour(now_hour, 30), at_hour(now_hour, 31), &SPEC), None);
    }

    #[test]
    fn the_band_follows_the_shape_between_slot_centres() {
        let now_hour = MONDAY + 24 * 3 + 8;
        // 07:00 1/s, 08:00 3/s
        let p = written(MONDAY, now_hour, |h| match h % 24 {
            7 => 3600,
            8 => 3 * 3600,
            _ => 0,
        });
        let history = HourlyRates::sum([&p]);
        let at = |m| band_at(&history, at_hour(now_hour, m), at_hour(now_hour, 59), &SPEC).unwrap().expected;
        assert!((at(0) - 2.0).abs() < 1e-9, "{}", at(0));
        assert!((at(30) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn truncated_partitions_bound_the_history_and_hours_are_kept_current() {
        let a = written(0, 10, |_| 3600);
        let mut b = written(0, 10, |_| 3600);
        b.retained_from = Some(4);
        b.truncated = true;
        let rates = HourlyRates::sum([&a, &b]);
        assert_eq!(rates.known(), 6);
        assert_eq!(rates.rates[4], Some(2.0));
        // a tick at 12:00 after a missed 11:00: hour 10 and 11 unknown, the oldest dropped
        b.push(12, Some(10 * 3600 + 7200), 11);
        assert_eq!((b.first_hour, b.next_hour()), (2, 13));
        assert_eq!([b.at(10), b.at(11), b.at(12)], [Some(10 * 3600), None, Some(10 * 3600 + 7200)]);
    }

    #[test]
    fn score_is_signed_and_never_nan() {
        let band = Band { lower: 0.0, expected: 0.0, upper: 1.0, slot: Slot::HourOfDay, samples: 1 };
        assert_eq!(band.score(0.0), 0.0);
        assert_eq!(band.score(2.0), 2.0);
        let band = Band { lower: 2.0, expected: 4.0, upper: 6.0, slot: Slot::HourOfDay, samples: 1 };
        assert_eq!(band.score(1.0), -1.5);
    }
}
