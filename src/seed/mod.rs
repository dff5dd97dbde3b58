//! Deterministic synthetic clinicians for demos and benchmarks: the same
//! `--seed` always yields the same people, places, specialties and capacity.

mod places;
mod words;

use words::{
    BIO_OPENERS, COMMON_INSURANCE, COMMON_MODALITIES, COMMON_SPECIALTIES, CREDENTIALS, FIRST, LAST,
};

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::{StreamExt, TryStreamExt};
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use uuid::Uuid;

use crate::auth::Role;
use crate::{
    audit,
    db::{
        DbPool,
        schema::{profiles, users},
    },
    http::RequestMeta,
    profiles::{
        Profile, Waitlist,
        taxonomy::{Kind, Taxonomy},
    },
};
use places::PLACES;

/// The password of every seeded account (demo data only).
pub const DEMO_PASSWORD: &str = "kith-demo-lantern-orbit";

/// Demo accounts with known emails, created by every seed run.
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 4] = [
    ("admin@kith.test", "Avery Admin", Role::Admin),
    (
        "supervisor@kith.test",
        "Dr. Sam Rivera, PhD",
        Role::Supervisor,
    ),
    ("ana@kith.test", "Ana Lopez, LCSW", Role::Clinician),
    ("ben@kith.test", "Ben Okafor, LMFT", Role::Clinician),
];

#[derive(Debug, Clone)]
pub struct SeedOptions {
    pub profiles: usize,
    pub seed: u64,
}

#[derive(Debug)]
pub struct SeedReport {
    pub inserted: usize,
    pub already_present: usize,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct SeedUser {
    id: Uuid,
    email: String,
    password_hash: String,
    display_name: String,
    role: Role,
    email_verified_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn pick_terms(rng: &mut StdRng, all: &[String], common: &[&str], count: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(count);
    while out.len() < count.min(all.len()) {
        let candidate = if rng.random_bool(0.55) && !common.is_empty() {
            common.choose(rng).map(|s| s.to_string())
        } else {
            all.choose(rng).cloned()
        };
        if let Some(slug) = candidate
            && all.contains(&slug)
            && !out.contains(&slug)
        {
            out.push(slug);
        }
    }
    out
}

fn pick_place(rng: &mut StdRng, total_weight: u32) -> &'static places::Place {
    let mut ticket = rng.random_range(0..total_weight);
    for place in PLACES {
        if ticket < place.weight {
            return place;
        }
        ticket -= place.weight;
    }
    &PLACES[0]
}

/// One synthetic clinician.
fn clinician(
    rng: &mut StdRng,
    index: usize,
    seed: u64,
    now: DateTime<Utc>,
    taxonomy: &Taxonomy,
    password_hash: &str,
) -> (SeedUser, Profile) {
    let slugs = |k: Kind| {
        taxonomy
            .terms(k)
            .iter()
            .map(|t| t.slug.clone())
            .collect::<Vec<_>>()
    };
    let total_weight: u32 = PLACES.iter().map(|p| p.weight).sum();
    let id = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
    let first = *FIRST.choose(rng).unwrap_or(&"Alex");
    let last = *LAST.choose(rng).unwrap_or(&"Smith");
    let credential = *CREDENTIALS.choose(rng).unwrap_or(&"LCSW");
    let place = pick_place(rng, total_weight);
    let created_at = now - Duration::days(rng.random_range(1..900));

    let mut license_states = vec![place.state.to_string()];
    if rng.random_bool(0.3) {
        let other = PLACES[rng.random_range(0..PLACES.len())].state.to_string();
        if !license_states.contains(&other) {
            license_states.push(other);
        }
    }
    let mut languages = vec!["english".to_string()];
    if rng.random_bool(0.22) {
        languages.push("spanish".into());
    }
    if rng.random_bool(0.08) {
        let all = slugs(Kind::Language);
        if let Some(l) = all.choose(rng)
            && !languages.contains(l)
        {
            languages.push(l.clone());
        }
    }
    let insurance = if rng.random_bool(0.2) {
        vec!["out-of-network".to_string()]
    } else {
        let n = rng.random_range(2..9);
        pick_terms(rng, &slugs(Kind::Insurance), COMMON_INSURANCE, n)
    };
    let n_spec = rng.random_range(3..8);
    let n_mod = rng.random_range(2..6);
    let n_pop = rng.random_range(1..5);
    let specialties = pick_terms(rng, &slugs(Kind::Specialty), COMMON_SPECIALTIES, n_spec);
    let modalities = pick_terms(rng, &slugs(Kind::Modality), COMMON_MODALITIES, n_mod);
    let populations = pick_terms(
        rng,
        &slugs(Kind::Population),
        &["adults", "young-adults", "adolescents"],
        n_pop,
    );
    let label = |kind: Kind, slug: &String| {
        taxonomy
            .terms(kind)
            .iter()
            .find(|t| &t.slug == slug)
            .map_or_else(|| slug.clone(), |t| t.label.to_lowercase())
    };
    let bio = format!(
        "{} I focus on {} and {}, using {}. I see {} in {}{}.",
        BIO_OPENERS.choose(rng).unwrap_or(&""),
        label(Kind::Specialty, &specialties[0]),
        label(Kind::Specialty, &specialties[1]),
        modalities
            .iter()
            .map(|m| label(Kind::Modality, m))
            .collect::<Vec<_>>()
            .join(", "),
        populations
            .iter()
            .map(|p| label(Kind::Population, p))
            .collect::<Vec<_>>()
            .join(", ")
            .to_lowercase(),
        place.city,
        if rng.random_bool(0.8) {
            " and by telehealth"
        } else {
            ""
        },
    );
    let fee_min = rng.random_range(16..37) * 5;
    let telehealth = rng.random_bool(0.8);
    let in_person = !telehealth || rng.random_bool(0.6);

    // Capacity: a realistic mix of open, waitlisted, stale, never confirmed and closed.
    let roll: f64 = rng.random();
    let (accepting, open_slots, waitlist, confirmed_at) = if roll < 0.40 {
        (
            true,
            rng.random_range(1..6),
            Waitlist::None,
            Some(now - Duration::hours(rng.random_range(1..13 * 24))),
        )
    } else if roll < 0.62 {
        let band = [Waitlist::Short, Waitlist::Medium, Waitlist::Long][rng.random_range(0..3)];
        (
            true,
            0,
            band,
            Some(now - Duration::hours(rng.random_range(1..13 * 24))),
        )
    } else if roll < 0.78 {
        (
            true,
            rng.random_range(0..4),
            Waitlist::None,
            Some(now - Duration::days(rng.random_range(15..240))),
        )
    } else if roll < 0.92 {
        (true, rng.random_range(0..3), Waitlist::None, None)
    } else {
        (
            false,
            0,
            Waitlist::Long,
            Some(now - Duration::days(rng.random_range(1..60))),
        )
    };

    let user = SeedUser {
        id,
        email: format!(
            "{}.{}.s{seed}n{index}@example.org",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', "")
        ),
        password_hash: password_hash.to_string(),
        display_name: format!("{first} {last}, {credential}"),
        role: Role::Clinician,
        email_verified_at: Some(created_at),
        created_at,
        updated_at: created_at,
    };
    let verified_at = rng
        .random_bool(0.9)
        .then_some(created_at + Duration::days(1));
    let profile = Profile {
        credentials: vec![credential.to_string()],
        license_number: Some(format!(
            "{}-{:06}",
            place.state,
            rng.random_range(0..1_000_000)
        )),
        verified_at,
        verified_states: if verified_at.is_some() {
            license_states.clone()
        } else {
            vec![]
        },
        bio,
        specialties,
        modalities,
        populations,
        languages,
        insurance,
        fee_min: Some(fee_min),
        fee_max: Some(fee_min + rng.random_range(0..21) * 5),
        sliding_scale: rng.random_bool(0.4),
        telehealth,
        in_person,
        city: Some(place.city.to_string()),
        state: Some(place.state.to_string()),
        postal_code: Some(place.zip.to_string()),
        latitude: Some(((place.lat + rng.random_range(-0.12..0.12)) * 1e5).round() / 1e5),
        longitude: Some(((place.lng + rng.random_range(-0.12..0.12)) * 1e5).round() / 1e5),
        accepting_referrals: accepting,
        open_slots,
        waitlist,
        capacity_confirmed_at: confirmed_at,
        license_states,
        ..Profile::empty(id, created_at)
    };
    (user, profile)
}

/// The demo accounts and a handful of complete, fresh profiles for them.
fn demo_accounts(now: DateTime<Utc>, password_hash: &str) -> Vec<(SeedUser, Profile)> {
    DEMO_ACCOUNTS
        .iter()
        .enumerate()
        .map(|(i, (email, name, role))| {
            let id = Uuid::new_v5(&Uuid::NAMESPACE_DNS, email.as_bytes());
            let user = SeedUser {
                id,
                email: (*email).into(),
                password_hash: password_hash.into(),
                display_name: (*name).into(),
                role: *role,
                email_verified_at: Some(now),
                created_at: now,
                updated_at: now,
            };
            let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
            let profile = Profile {
                credentials: s(&[["MBA", "PhD", "LCSW", "LMFT"][i]]),
                license_states: s(&["NY", "NJ"]),
                license_number: Some(format!("NY-{:06}", 100 + i)),
                verified_at: Some(now),
                verified_states: s(&["NY", "NJ"]),
                bio: "Demo account. I work with adults and couples on anxiety, trauma and life transitions.".into(),
                specialties: s(&["anxiety", "trauma-ptsd", "life-transitions", "couples"]),
                modalities: s(&["cbt", "emdr", "eft"]),
                populations: s(&["adults", "couples"]),
                languages: s(&["english", "spanish"]),
                insurance: s(&["aetna", "cigna", "medicaid"]),
                fee_min: Some(120),
                fee_max: Some(180),
                sliding_scale: true,
                telehealth: true,
                in_person: true,
                city: Some("Brooklyn".into()),
                state: Some("NY".into()),
                postal_code: Some("11201".into()),
                latitude: Some(40.6782 + i as f64 * 0.01),
                longitude: Some(-73.9442),
                accepting_referrals: *role != Role::Admin,
                open_slots: 3,
                capacity_confirmed_at: Some(now),
                ..Profile::empty(id, now)
            };
            (user, profile)
        })
        .collect()
}

/// Inserts the demo accounts and `profiles` synthetic clinicians. Re-running
/// with the same seed inserts nothing twice.
pub async fn run(
    pool: &DbPool,
    taxonomy: &Taxonomy,
    now: DateTime<Utc>,
    options: &SeedOptions,
) -> anyhow::Result<SeedReport> {
    let password_hash = crate::auth::password::hash(DEMO_PASSWORD.to_string())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut people = demo_accounts(now, &password_hash);
    people.extend(
        (0..options.profiles)
            .map(|i| clinician(&mut rng, i, options.seed, now, taxonomy, &password_hash)),
    );
    let total = people.len();

    const CHUNK: usize = 1_000;
    let mut chunks = Vec::new();
    let mut iter = people.into_iter().peekable();
    while iter.peek().is_some() {
        let chunk: Vec<_> = iter.by_ref().take(CHUNK).collect();
        chunks.push(chunk);
    }
    let inserted: usize = futures_util::stream::iter(chunks)
        .map(|chunk| async move {
            let mut conn = pool.get().await?;
            let (users_rows, profile_rows): (Vec<SeedUser>, Vec<Profile>) =
                chunk.into_iter().unzip();
            let n = conn
                .transaction::<usize, diesel::result::Error, _>(async |conn| {
                    let ids: Vec<Uuid> = diesel::insert_into(users::table)
                        .values(&users_rows)
                        .on_conflict_do_nothing()
                        .returning(users::id)
                        .get_results(conn)
                        .await?;
                    let fresh: Vec<&Profile> = profile_rows
                        .iter()
                        .filter(|p| ids.contains(&p.user_id))
                        .collect();
                    if !fresh.is_empty() {
                        diesel::insert_into(profiles::table)
                            .values(fresh.into_iter().cloned().collect::<Vec<_>>())
                            .on_conflict_do_nothing()
                            .execute(conn)
                            .await?;
                    }
                    Ok(ids.len())
                })
                .await?;
            Ok::<usize, anyhow::Error>(n)
        })
        .buffer_unordered(4)
        .try_fold(0, |acc, n| async move { Ok(acc + n) })
        .await?;

    let conn = pool.get().await?;
    audit::record(
        &conn,
        now,
        &RequestMeta::default(),
        audit::Event::new(None, audit::Action::DemoDataSeeded, "seed", options.seed)
            .detail(serde_json::json!({"requested": options.profiles, "inserted": inserted})),
    )
    .await?;
    Ok(SeedReport {
        inserted,
        already_present: total - inserted,
    })
}
