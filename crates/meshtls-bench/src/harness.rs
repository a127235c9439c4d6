//! A small, dependency-free measuring harness: each benchmark is timed in batches sized to
//! about `target` of wall time, repeated `samples` times; the median per-operation time is
//! reported, with p99 where a benchmark records individual latencies.
#![allow(dead_code)] // later groups use every helper

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde::Serialize;

/// One measured operation.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// What was measured.
    pub name: String,
    /// Median nanoseconds per operation over the samples.
    pub median_ns: f64,
    /// Fastest sample, nanoseconds per operation.
    pub min_ns: f64,
    /// Operations per second at the median.
    pub ops_per_sec: f64,
}

/// A meshtls measurement beside its alternative.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Which area (identity, policy, ca, svid, tls).
    pub group: String,
    /// The meshtls side.
    pub meshtls: Stat,
    /// The alternative, when there is one.
    pub alternative: Option<Stat>,
    /// alternative time / meshtls time (> 1 means meshtls is faster).
    pub ratio: Option<f64>,
    /// The goal for `ratio`, when the project set one.
    pub goal: Option<f64>,
    /// Free-form notes (p99, sizes).
    pub note: String,
}

/// Collects rows.
#[derive(Debug)]
pub struct Harness {
    /// Time per sample.
    pub target: Duration,
    /// Samples per measurement.
    pub samples: usize,
    /// Finished rows.
    pub rows: Vec<Row>,
    /// Only run groups whose name is in here (all when empty).
    pub only: Vec<String>,
}

impl Harness {
    /// Whether `group` is selected.
    pub fn wants(&self, group: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|g| g == group)
    }

    /// Measures `f` (one call = one operation).
    pub fn measure<R>(&self, name: &str, mut f: impl FnMut() -> R) -> Stat {
        self.measure_batch(name, 1, move || {
            black_box(f());
        })
    }

    /// Measures `f`, where one call performs `ops` operations.
    pub fn measure_batch(&self, name: &str, ops: u64, mut f: impl FnMut()) -> Stat {
        // Calibrate: grow the batch until it takes at least a tenth of the target.
        let mut iters: u64 = 1;
        loop {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            let el = t.elapsed();
            if el >= self.target / 10 || iters >= 1 << 30 {
                let per = el.as_secs_f64() / iters as f64;
                iters = ((self.target.as_secs_f64() / per.max(1e-12)) as u64).max(1);
                break;
            }
            iters *= 4;
        }
        let mut per_op: Vec<f64> = Vec::with_capacity(self.samples);
        for _ in 0..self.samples {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            per_op.push(t.elapsed().as_nanos() as f64 / (iters * ops) as f64);
        }
        per_op.sort_by(|a, b| a.total_cmp(b));
        let median = per_op[per_op.len() / 2];
        Stat {
            name: name.to_owned(),
            median_ns: median,
            min_ns: per_op[0],
            ops_per_sec: 1e9 / median,
        }
    }

    /// Records meshtls against an alternative.
    pub fn pair(
        &mut self,
        group: &str,
        meshtls: Stat,
        alternative: Stat,
        goal: Option<f64>,
        note: &str,
    ) {
        let ratio = alternative.median_ns / meshtls.median_ns;
        self.rows.push(Row {
            group: group.to_owned(),
            meshtls,
            alternative: Some(alternative),
            ratio: Some(ratio),
            goal,
            note: note.to_owned(),
        });
    }

    /// Records a measurement with no alternative.
    pub fn single(&mut self, group: &str, meshtls: Stat, note: &str) {
        self.rows.push(Row {
            group: group.to_owned(),
            meshtls,
            alternative: None,
            ratio: None,
            goal: None,
            note: note.to_owned(),
        });
    }

    /// Records a ratio computed by the caller (e.g. against a derived limit).
    pub fn derived(
        &mut self,
        group: &str,
        meshtls: Stat,
        reference: Stat,
        ratio: f64,
        goal: Option<f64>,
        note: &str,
    ) {
        self.rows.push(Row {
            group: group.to_owned(),
            meshtls,
            alternative: Some(reference),
            ratio: Some(ratio),
            goal,
            note: note.to_owned(),
        });
    }
}

/// Formats nanoseconds for people.
pub fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}
