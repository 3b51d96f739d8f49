//! The time-zone hint: a delay (or a lead) that sits on a whole time-zone offset with a
//! narrow spread is what event times written as local time and read as UTC look like —
//! and 8 hours, UTC+8 (China, Singapore, …), looks exactly like the 8-hour silo. The hint is
//! a question next to the cause, never a cause: a real batch path spreads its delays.

use crate::time::{format_human, Millis};

/// The offsets a zone can have: 1 h to 14 h in steps of 15 minutes.
const STEP_MS: Millis = 15 * 60_000;
const MIN_OFFSET_MS: Millis = 3_600_000;
const MAX_OFFSET_MS: Millis = 14 * 3_600_000;
/// How near a whole offset the centre must sit.
const NEAR_MS: Millis = 60_000;
/// How narrow the middle 80 % of the values must be (10th to 90th percentile).
const NARROW_MS: Millis = 120_000;

/// The middle of a set of values and its spread: median, 10th and 90th percentile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spread {
    pub median: Millis,
    pub p10: Millis,
    pub p90: Millis,
}

impl Spread {
    /// The median and percentiles of `values` (reordered); `None` when empty.
    pub fn of(values: &mut [Millis]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let at = |values: &mut [Millis], q: usize| *values.select_nth_unstable((values.len() - 1) * q / 100).1;
        let p10 = at(values, 10);
        let p90 = at(values, 90);
        let median = *values.select_nth_unstable(values.len() / 2).1;
        Some(Self { median, p10, p90 })
    }
}

/// The whole offset `spread` sits on, if it does: its median within a minute of a
/// multiple of 15 minutes between 1 h and 14 h (in absolute value), its middle 80 %
/// within two minutes.
pub fn zone_offset(spread: Spread) -> Option<Millis> {
    let centre = spread.median.abs();
    let offset = (centre + STEP_MS / 2) / STEP_MS * STEP_MS;
    let on_offset = (MIN_OFFSET_MS..=MAX_OFFSET_MS).contains(&offset) && (centre - offset).abs() <= NEAR_MS;
    (on_offset && spread.p90 - spread.p10 <= NARROW_MS).then_some(offset)
}

/// Whether `value` sits within a minute of the whole offset `spread` sits on (in absolute
/// value).
pub fn on_offset(value: Millis, spread: Spread) -> bool {
    zone_offset(spread).is_some_and(|offset| (value.abs() - offset).abs() <= NEAR_MS)
}

/// The hint in words, for `what` (e.g. `behind by`, `behaviour is behind orders by`):
/// "behind by 8h 00m ± 20s, exactly the 8h 00m offset of a time zone (UTC+08:00 or
/// UTC−08:00): are event times written as local time?"
pub fn hint(what: &str, spread: Spread) -> Option<String> {
    let offset = zone_offset(spread)?;
    let minutes = offset / 60_000;
    let zone = format!("{:02}:{:02}", minutes / 60, minutes % 60);
    let half = (spread.p90 - spread.p10) as f64 / 2000.0;
    Some(format!(
        "{what} {} ± {}, exactly the {} offset of a time zone (UTC+{zone} or UTC−{zone}): are event times written as local time?",
        // to the minute: a clock a little behind must not read "7h 59m" for 8 hours
        format_human(((spread.median.abs() + 30_000) / 60_000 * 60) as f64),
        format_human(half),
        format_human(offset as f64 / 1000.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;
    const S: Millis = 1000;

    fn spread(median: Millis, p10: Millis, p90: Millis) -> Spread {
        Spread { median, p10, p90 }
    }

    #[test]
    fn a_narrow_delay_on_a_whole_offset_is_hinted() {
        assert_eq!(zone_offset(spread(8 * H + 3 * S, 8 * H - 10 * S, 8 * H + 20 * S)), Some(8 * H));
        assert_eq!(
            zone_offset(spread(5 * H + 30 * 60_000, 5 * H + 29 * 60_000, 5 * H + 31 * 60_000)),
            Some(5 * H + 30 * 60_000),
            "India"
        );
        assert_eq!(zone_offset(spread(-8 * H, -8 * H - S, -8 * H + S)), Some(8 * H), "ahead, the other way");
        let early = hint("behind by", spread(8 * H - 100, 8 * H - 200, 8 * H)).unwrap();
        assert!(early.starts_with("behind by 8h 00m ± 0.1s"), "to the minute: {early}");
        let text = hint("behind by", spread(8 * H, 8 * H - 20 * S, 8 * H + 20 * S)).unwrap();
        assert_eq!(
            text,
            "behind by 8h 00m ± 20s, exactly the 8h 00m offset of a time zone (UTC+08:00 or UTC−08:00): are event times written as local time?"
        );
    }

    #[test]
    fn a_spread_out_batch_delay_or_one_off_the_offset_is_not() {
        assert_eq!(zone_offset(spread(8 * H, 7 * H + 40 * 60_000, 8 * H + 20 * 60_000)), None, "a batch path spreads");
        assert_eq!(
            zone_offset(spread(8 * H + 7 * 60_000, 8 * H + 7 * 60_000 - S, 8 * H + 7 * 60_000 + S)),
            None,
            "7 minutes off"
        );
        assert_eq!(zone_offset(spread(30 * 60_000, 30 * 60_000, 30 * 60_000)), None, "under an hour");
        assert_eq!(zone_offset(spread(15 * H, 15 * H, 15 * H)), None, "no zone is 15 h off");
        assert_eq!(zone_offset(spread(2 * S, S, 3 * S)), None, "real time");
    }

    #[test]
    fn the_spread_is_the_median_and_the_middle_eighty_percent() {
        let mut values: Vec<Millis> = (0..=100).rev().collect();
        assert_eq!(Spread::of(&mut values), Some(spread(50, 10, 90)));
        assert_eq!(Spread::of(&mut []), None);
    }
}
