//! The low-watermark rule and sync lag, once: what a stream's (or a consumer's)
//! watermark is, and how far one stream is behind another.

use crate::time::{format_human, Millis};

/// The low-watermark rule (Flink's and Beam's): the min of the active partitions'
/// watermarks, so that one slow partition holds the stream back and an idle one does
/// not; with no active partition, the max of them all (the freshest thing known).
/// `None` while no partition has a watermark.
#[derive(Debug, Clone, Copy, Default)]
pub struct LowWatermark {
    active_min: Option<Millis>,
    any_max: Option<Millis>,
}

impl LowWatermark {
    /// One partition's watermark, and whether the partition is active.
    #[inline]
    pub fn add(&mut self, watermark: Option<Millis>, active: bool) {
        if let Some(w) = watermark {
            if active {
                self.active_min = Some(self.active_min.map_or(w, |m| m.min(w)));
            }
            self.any_max = Some(self.any_max.map_or(w, |m| m.max(w)));
        }
    }

    pub fn get(self) -> Option<Millis> {
        self.active_min.or(self.any_max)
    }
}

/// Leader watermark − follower watermark in seconds, signed; positive: the follower is
/// behind. `None` until both have a watermark.
pub fn sync_lag_seconds(leader: Option<Millis>, follower: Option<Millis>) -> Option<f64> {
    leader.zip(follower).map(|(l, f)| (l - f) as f64 / 1000.0)
}

/// How a person reads a lag between two streams: "behaviour is 8h 00m behind orders".
/// `by` is already in human units (pipewatch's own or a Prometheus template's).
pub fn behind(follower: &str, by: &str, leader: &str) -> String {
    format!("{follower} is {by} behind {leader}")
}

/// A sync lag in words: the follower `behind` the leader, or "ahead of" it when the lag
/// is negative; `None` when they are in sync.
pub fn sync_lag_phrase(leader: &str, follower: &str, lag_seconds: f64) -> Option<String> {
    if lag_seconds > 0.0 {
        Some(behind(follower, &format_human(lag_seconds), leader))
    } else if lag_seconds < 0.0 {
        Some(format!("{follower} is {} ahead of {leader}", format_human(-lag_seconds)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_partition_does_not_hold_the_stream_back_unless_all_are_idle() {
        let mut w = LowWatermark::default();
        assert_eq!(w.get(), None);
        w.add(None, true);
        assert_eq!(w.get(), None, "a partition without a watermark tells nothing");
        w.add(Some(5_000), false);
        assert_eq!(w.get(), Some(5_000), "all idle: the freshest known");
        w.add(Some(9_000), true);
        w.add(Some(7_000), true);
        assert_eq!(w.get(), Some(7_000), "the slowest active partition");
        w.add(Some(1_000), false);
        assert_eq!(w.get(), Some(7_000), "an idle one does not hold it back");
    }

    #[test]
    fn sync_lag_is_signed_and_absent_until_both_sides_have_a_watermark() {
        assert_eq!(sync_lag_seconds(Some(10_000), Some(4_000)), Some(6.0));
        assert_eq!(sync_lag_seconds(Some(4_000), Some(10_000)), Some(-6.0));
        assert_eq!(sync_lag_seconds(None, Some(1)), None);
        assert_eq!(sync_lag_seconds(Some(1), None), None);
    }

    #[test]
    fn a_sync_lag_reads_as_behind_or_ahead() {
        assert_eq!(
            sync_lag_phrase("orders", "behaviour", 28_800.0).as_deref(),
            Some("behaviour is 8h 00m behind orders")
        );
        assert_eq!(
            sync_lag_phrase("orders", "behaviour", -90.0).as_deref(),
            Some("behaviour is 1m 30s ahead of orders")
        );
        assert_eq!(sync_lag_phrase("orders", "behaviour", 0.0), None);
    }
}
