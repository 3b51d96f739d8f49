//! Fixed-bucket histograms (Prometheus `le` semantics) kept by the monitor itself, so
//! that the per-record path is a few integer operations.

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Upper bounds, in seconds, of `pipewatch_stream_record_delay_seconds`.
pub const RECORD_DELAY_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0,
    43_200.0, 86_400.0,
];

/// Upper bounds, in seconds, of `pipewatch_gap_duration_seconds`.
pub const GAP_DURATION_BUCKETS: &[f64] =
    &[5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0];

#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Count per bucket (not cumulative); the last one is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    #[inline]
    pub fn observe(&mut self, value: f64) {
        let i = self.bounds.partition_point(|b| *b < value);
        self.counts[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// `(upper bound, cumulative count)` per finite bucket, as Prometheus exposes them.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .zip(self.counts.iter().scan(0u64, |acc, c| {
                *acc += c;
                Some(*acc)
            }))
            .map(|(b, c)| (*b, c))
    }
}

/// As JSON: `{"count", "sum", "buckets": [{"le", "count"}]}` with cumulative counts,
/// the way Prometheus exposes a histogram.
impl Serialize for Histogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Bucket {
            le: f64,
            count: u64,
        }
        let buckets: Vec<Bucket> = self.cumulative().map(|(le, count)| Bucket { le, count }).collect();
        let mut st = serializer.serialize_struct("Histogram", 3)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("sum", &self.sum)?;
        st.serialize_field("buckets", &buckets)?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_semantics_and_cumulative() {
        let mut h = Histogram::new(&[1.0, 5.0]);
        for v in [0.5, 1.0, 3.0, 9.0] {
            h.observe(v);
        }
        assert_eq!(h.counts(), &[2, 1, 1]);
        assert_eq!(h.cumulative().collect::<Vec<_>>(), vec![(1.0, 2), (5.0, 3)]);
        assert_eq!(h.count(), 4);
        assert_eq!(h.sum(), 13.5);
    }
}
