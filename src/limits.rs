//! Limits on how much one person or one address may ask of what everyone
//! shares: the argon2 queue, the mail server, colleagues' inboxes. Each is
//! answered with 429 `rate_limited` and `Retry-After`.
//!
//! Two kinds, each where it belongs:
//! - **per address, per instance** ([`AddressLimits`], `governor`): they
//!   guard this instance's own argon2 queue from a flood, so they answer in
//!   microseconds without a database round trip;
//! - **per account or group, across instances** ([`Window`]): counted from
//!   the rows the action itself leaves in PostgreSQL (links sent, invitations,
//!   referrals), so every instance sees the same count and nothing extra is
//!   stored. Two requests at the very same moment may both pass the last
//!   free place; the limit holds to within the requests in flight.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock as _};

use crate::error::{AppError, AppResult};

/// At most `max` actions in any `per`, counted in PostgreSQL.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub max: i64,
    pub per: chrono::Duration,
}

impl Window {
    pub const fn per_hour(max: i64) -> Self {
        Self {
            max,
            per: chrono::Duration::hours(1),
        }
    }

    pub const fn per_day(max: i64) -> Self {
        Self {
            max,
            per: chrono::Duration::days(1),
        }
    }

    /// Start of the window that ends `now`.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.per
    }

    /// How many of the newest actions to skip to reach the `max`-th newest:
    /// a query reads `ORDER BY at DESC OFFSET skip() LIMIT 1` within the
    /// window, so it returns one row at most, and only when the window is full.
    pub fn skip(&self) -> i64 {
        self.max.max(1) - 1
    }

    /// Refuses when the window already holds `max` actions: `nth_newest` is
    /// the time of the `max`-th newest one in it, if there is one.
    /// `Retry-After` is when that one leaves the window.
    pub fn check(&self, nth_newest: Option<DateTime<Utc>>, now: DateTime<Utc>) -> AppResult<()> {
        match nth_newest {
            Some(at) => {
                let wait = (at + self.per - now).num_seconds().max(1);
                Err(AppError::rate_limited(wait as u64))
            }
            None => Ok(()),
        }
    }
}

/// Every limit, with its default. The README's "Limits" table lists them.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Registrations from one address: a burst, then one each `per`.
    pub registrations_per_address: (u32, Duration),
    /// "Forgot password" requests from one address.
    pub reset_requests_per_address: (u32, Duration),
    /// Reset links emailed to one account.
    pub reset_links: Window,
    /// Verification links emailed to one account (resends and moves).
    pub verification_links: Window,
    /// Invitations one person sends.
    pub invitations_per_sender: Window,
    /// Invitations sent for one group.
    pub invitations_per_group: Window,
    /// Referrals one clinician sends.
    pub referrals_per_sender: Window,
    /// Wrong current passwords (password or email change) before a pause,
    /// within the sign-in window.
    pub wrong_passwords: i32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            registrations_per_address: (5, Duration::from_secs(12 * 60)),
            reset_requests_per_address: (5, Duration::from_secs(12 * 60)),
            reset_links: Window::per_hour(3),
            verification_links: Window::per_hour(3),
            invitations_per_sender: Window::per_day(50),
            invitations_per_group: Window::per_day(100),
            referrals_per_sender: Window::per_hour(60),
            wrong_passwords: 5,
        }
    }
}

impl Limits {
    /// Limits no test or benchmark reaches unless it means to.
    pub fn generous() -> Self {
        Self {
            registrations_per_address: (100_000, Duration::from_millis(1)),
            reset_requests_per_address: (100_000, Duration::from_millis(1)),
            reset_links: Window::per_hour(1_000),
            verification_links: Window::per_hour(1_000),
            invitations_per_sender: Window::per_day(10_000),
            invitations_per_group: Window::per_day(10_000),
            referrals_per_sender: Window::per_hour(100_000),
            wrong_passwords: 1_000,
        }
    }
}

type Keyed = Arc<DefaultKeyedRateLimiter<IpAddr>>;

/// The per-address limits of this instance.
#[derive(Clone)]
pub struct AddressLimits {
    registrations: Keyed,
    reset_requests: Keyed,
}

fn keyed((burst, per): (u32, Duration)) -> Keyed {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(per)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    Arc::new(RateLimiter::keyed(quota))
}

fn take(limiter: &Keyed, ip: Option<&str>) -> AppResult<()> {
    // Without an address (never behind a sane proxy) every such request shares one key.
    let ip = ip
        .and_then(|ip| ip.parse().ok())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    limiter.check_key(&ip).map_err(|not_until| {
        let wait = not_until.wait_time_from(governor::clock::DefaultClock::default().now());
        AppError::rate_limited(wait.as_secs_f64().ceil() as u64)
    })
}

impl AddressLimits {
    pub fn new(limits: &Limits) -> Self {
        Self {
            registrations: keyed(limits.registrations_per_address),
            reset_requests: keyed(limits.reset_requests_per_address),
        }
    }

    pub fn registration(&self, ip: Option<&str>) -> AppResult<()> {
        take(&self.registrations, ip)
    }

    pub fn reset_request(&self, ip: Option<&str>) -> AppResult<()> {
        take(&self.reset_requests, ip)
    }

    /// Forgets addresses whose allowance is full again (the hourly housekeeping).
    pub fn forget_idle(&self) {
        for limiter in [&self.registrations, &self.reset_requests] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}
