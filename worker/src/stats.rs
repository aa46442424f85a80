//! In-process counters for the exit summary: tasks by kind and outcome, message dispositions.
//! Label sets are bounded: kinds and outcomes are enums.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// What happened to one received message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Succeeded,
    Failed,
    Retried,
    Dead,
    Parked,
    /// Parked because a quota on work in flight is full.
    WaitingForCapacity,
    HandedBack,
    Duplicate,
    LeasedElsewhere,
    Poison,
    NotYet,
    LostLease,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Succeeded => "succeeded",
            Disposition::Failed => "failed",
            Disposition::Retried => "retried",
            Disposition::Dead => "dead",
            Disposition::Parked => "parked",
            Disposition::WaitingForCapacity => "waiting_for_capacity",
            Disposition::HandedBack => "handed_back",
            Disposition::Duplicate => "duplicate",
            Disposition::LeasedElsewhere => "leased_elsewhere",
            Disposition::Poison => "poison",
            Disposition::NotYet => "not_yet",
            Disposition::LostLease => "lost_lease",
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Counts>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Counts {
    pub received: u64,
    /// (kind, disposition) → count. Poison messages have kind "unknown".
    pub tasks: BTreeMap<String, BTreeMap<String, u64>>,
    pub takeovers: u64,
    pub children_sent: u64,
    pub task_millis: u64,
}

impl Stats {
    pub fn received(&self, n: usize) {
        self.inner.lock().expect("stats").received += n as u64;
    }

    pub fn record(&self, kind: &str, disposition: Disposition) {
        let mut counts = self.inner.lock().expect("stats");
        *counts.tasks.entry(kind.to_owned()).or_default().entry(disposition.as_str().to_owned()).or_default() += 1;
    }

    pub fn takeover(&self) {
        self.inner.lock().expect("stats").takeovers += 1;
    }

    pub fn children(&self, n: usize) {
        self.inner.lock().expect("stats").children_sent += n as u64;
    }

    pub fn task_time(&self, millis: u64) {
        self.inner.lock().expect("stats").task_millis += millis;
    }

    pub fn snapshot(&self) -> Counts {
        self.inner.lock().expect("stats").clone()
    }

    /// Count of one disposition across kinds.
    pub fn total(&self, disposition: Disposition) -> u64 {
        self.snapshot().tasks.values().filter_map(|d| d.get(disposition.as_str())).sum()
    }
}
