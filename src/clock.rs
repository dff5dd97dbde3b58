//! The one source of "now". Production reads the system clock; tests move an
//! offset forward to reach deadlines and freshness limits without sleeping.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, Duration, SubsecRound, Utc};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, to the microsecond: PostgreSQL's precision, so a time in a reply
    /// equals the one stored.
    pub fn now(&self) -> DateTime<Utc> {
        (Utc::now() + Duration::microseconds(self.offset_micros.load(Ordering::Relaxed)))
            .trunc_subsecs(6)
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: Duration) {
        let micros = by.num_microseconds().unwrap_or(i64::MAX);
        self.offset_micros.fetch_add(micros, Ordering::Relaxed);
    }
}
