//! A fixed-bucket histogram of durations, for ledger commit latency.

use std::time::Duration;

/// The buckets' upper bounds, in seconds (`+Inf` is implied).
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Durations counted by bucket, with their sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latency {
    /// Per bucket of [`LATENCY_BUCKETS`], not cumulative; the last one
    /// counts what is above every bound.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Latency {
    pub fn record(&mut self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i] = self.counts[i].saturating_add(1);
        self.sum_seconds += secs;
        self.count = self.count.saturating_add(1);
    }

    /// Each bucket's upper bound with how many fell in it (above the
    /// bound before; not cumulative), the last one `+Inf`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(self.counts)
            .collect()
    }
}
