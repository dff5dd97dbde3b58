//! Proving an email address: the link read out of the mail a real SMTP
//! server received, what an unverified account may and may not do, moving to
//! a new address, and the stories the issue told (an invitation hijacked by
//! whoever registered the address first; registration telling who has an
//! account).

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::referrals::{colleague, referral};
use crate::search::{names, profile, search};
use crate::support::{PASSWORD, SmtpServer, TestApp, link_in, wait_for};

async fn app_with_mail() -> (SmtpServer, TestApp) {
    let smtp = SmtpServer::start_on(SmtpServer::free_port());
    let app = TestApp::spawn_with(|s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port).into())
    })
    .await;
    (smtp, app)
}

/// Every verification token that reached `to`, oldest first.
fn tokens_to(smtp: &SmtpServer, to: &str) -> Vec<String> {
    smtp.messages()
        .iter()
        .filter(|m| m.contains(&format!("To: {to}")))
        .filter_map(|m| link_in(m, "http"))
        .filter_map(|l| l.split("#/verify-email?token=").nth(1).map(str::to_string))
        .collect()
}

async fn nth_token(smtp: &SmtpServer, to: &str, n: usize) -> String {
    wait_for("the verification email", || tokens_to(smtp, to).len() > n).await;
    tokens_to(smtp, to)[n].clone()
}

async fn verify(app: &TestApp, token: &str) -> crate::support::Reply {
    app.call(
        Method::POST,
        "/api/v1/auth/verify-email",
        Some(json!({ "token": token })),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_account_may_sign_in_and_search_but_not_refer_or_join_until_the_link_is_opened()
 {
    let (smtp, app) = app_with_mail().await;
    let ben = colleague(&app, "Ben", 2).await;
    let ana = app.register_unverified("Ana").await;
    assert!(ana.get("/api/v1/me").await.assert(StatusCode::OK)["email_verified_at"].is_null());

    // What she may do: edit her profile and search.
    ana.put(
        "/api/v1/profiles/me",
        profile(1, &["anxiety"], "NY", (40.7, -74.0)),
    )
    .await
    .assert(StatusCode::OK);
    ana.get("/api/v1/search/clinicians?q=anxiety")
        .await
        .assert(StatusCode::OK);

    // What waits, each saying why.
    ana.post("/api/v1/referrals", referral("direct", &[&ben]))
        .await
        .assert_error(StatusCode::FORBIDDEN, "email_unverified");
    let group = ana
        .post(
            "/api/v1/groups",
            json!({"name": "Tuesday consult", "topic": "general", "description": "", "listed": true}),
        )
        .await;
    group.assert_error(StatusCode::FORBIDDEN, "email_unverified");
    assert!(
        group.body["message"]
            .as_str()
            .unwrap()
            .contains("Verify your email")
    );
    // She is nobody's referral recipient.
    ben.post("/api/v1/referrals", referral("direct", &[&ana]))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // The link from the mail that arrived proves the address, once.
    let token = nth_token(&smtp, &ana.email, 0).await;
    let account = verify(&app, &token).await;
    assert!(account.assert(StatusCode::OK)["email_verified_at"].is_string());
    verify(&app, &token)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_verification_link");
    // Her existing sign-in may now do what waited.
    ana.post(
        "/api/v1/groups",
        json!({"name": "Tuesday consult", "topic": "general", "description": "", "listed": true}),
    )
    .await
    .assert(StatusCode::CREATED);
    ana.post("/api/v1/referrals", referral("direct", &[&ben]))
        .await
        .assert(StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_clinician_is_not_found_until_verified() {
    let app = TestApp::spawn().await;
    let seeker = app.register("Seeker").await;
    let ana = app.register_unverified("Ana").await;
    ana.put(
        "/api/v1/profiles/me",
        profile(1, &["adhd"], "NY", (40.7, -74.0)),
    )
    .await
    .assert(StatusCode::OK);
    ana.set_capacity(json!({"open_slots": 2}))
        .await
        .assert(StatusCode::OK);
    let known = app.register("Known").await;
    known
        .put(
            "/api/v1/profiles/me",
            profile(1, &["adhd"], "NY", (40.7, -74.0)),
        )
        .await
        .assert(StatusCode::OK);
    app.eventually("the verified colleague is indexed", async || {
        search(&seeker, "q=adhd").await["total"] == 1
    })
    .await;
    assert_eq!(names(&search(&seeker, "q=adhd").await), ["Known"]);
    // Nor on her profile page, to anyone but herself.
    seeker
        .get(&format!("/api/v1/profiles/{}", ana.id))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ana.get(&format!("/api/v1/profiles/{}", ana.id))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    ana.get("/api/v1/profiles/me").await.assert(StatusCode::OK);
    // Nor in match.
    let shortlist = seeker
        .post(
            "/api/v1/match",
            json!({"age_band": "adult", "state": "NY", "concerns": ["adhd"], "telehealth_ok": true}),
        )
        .await;
    let shortlist = shortlist.assert(StatusCode::OK).to_string();
    assert!(!shortlist.contains(&ana.id.to_string()), "{shortlist}");

    let token = app.verification_token(&ana.email).await;
    verify(&app, &token).await.assert(StatusCode::OK);
    app.eventually("she is found once verified", async || {
        search(&seeker, "q=adhd").await["total"] == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoever_registers_an_invited_address_first_cannot_take_the_invitation() {
    let (smtp, app) = app_with_mail().await;
    let host = app.register("Host").await;
    let group = host.create_group("Case consult", false).await;
    host.post(
        &format!("/api/v1/groups/{group}/invites"),
        json!({"email": "colleague@clinic.example"}),
    )
    .await
    .assert(StatusCode::CREATED);
    let invite_id = {
        let mut conn = app.db.conn().await;
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use kith::db::schema::group_invites;
        group_invites::table
            .select(group_invites::id)
            .first::<uuid::Uuid>(&mut conn)
            .await
            .unwrap()
    };

    // The attacker registers the address before its owner does.
    let attacker = app.register_unverified("Colleague").await;
    assert_eq!(attacker.email, "colleague@clinic.example");
    let groups = attacker.get("/api/v1/groups").await;
    assert_eq!(groups.assert(StatusCode::OK)["invites"], json!([]));
    attacker
        .post(
            &format!("/api/v1/group-invites/{invite_id}/accept"),
            json!({}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN, "email_unverified");
    // The group stays closed to them: not even its existence shows.
    attacker
        .get(&format!("/api/v1/groups/{group}/messages"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    let members = host.get(&format!("/api/v1/groups/{group}/members")).await;
    assert_eq!(members.assert(StatusCode::OK).as_array().unwrap().len(), 1);
    // The link went to the address, which the attacker cannot read.
    wait_for("the verification email", || {
        !tokens_to(&smtp, "colleague@clinic.example").is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_verification_links_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let ana = app.register_unverified("Ana").await;
    let ben = app.register_unverified("Ben").await;
    let anas = app.verification_token(&ana.email).await;

    // Tampered and unknown.
    let mut tampered = anas.clone();
    tampered.replace_range(0..1, if anas.starts_with('A') { "B" } else { "A" });
    for token in [tampered.as_str(), "", "not-a-token"] {
        verify(&app, token)
            .await
            .assert_error(StatusCode::BAD_REQUEST, "invalid_verification_link");
    }
    // Expired.
    app.db
        .run_sql("UPDATE email_verifications SET created_at = now() - interval '2 days', expires_at = now() - interval '1 day'")
        .await;
    verify(&app, &anas)
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid_verification_link");
    for person in [&ana, &ben] {
        let me = person.get("/api/v1/me").await;
        assert!(me.assert(StatusCode::OK)["email_verified_at"].is_null());
    }

    // A new link works; it proves only its own account, whoever opens it.
    ana.post("/api/v1/me/email-verification", json!({}))
        .await
        .assert(StatusCode::ACCEPTED);
    let fresh = app.verification_token(&ana.email).await;
    assert_ne!(fresh, anas);
    let opened = verify(&app, &fresh).await;
    assert_eq!(opened.assert(StatusCode::OK)["email"], ana.email);
    assert!(ben.get("/api/v1/me").await.body["email_verified_at"].is_null());
    ana.post("/api/v1/me/email-verification", json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "email_already_verified");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_links_is_limited_per_hour() {
    let app = TestApp::spawn_with(|s| {
        s.limits.verification_links = kith::limits::Window::per_hour(2);
    })
    .await;
    let ana = app.register_unverified("Ana").await;
    // Registration sent the first; one resend fits, the next waits.
    ana.post("/api/v1/me/email-verification", json!({}))
        .await
        .assert(StatusCode::ACCEPTED);
    let third = ana.post("/api/v1/me/email-verification", json!({})).await;
    third.assert_error(StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let wait: u64 = third.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_to_a_new_address_takes_effect_once_it_is_proved_and_the_old_one_is_told() {
    let (smtp, app) = app_with_mail().await;
    let ana = app.register("Ana").await;
    let change = |password: &str, email: &str| {
        ana.put(
            "/api/v1/me/email",
            json!({"new_email": email, "current_password": password}),
        )
    };
    change("not her password at all", "ana@newclinic.example")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    change(PASSWORD, "ANA@newclinic.example ")
        .await
        .assert(StatusCode::ACCEPTED);
    wait_for("the notice to the old address", || {
        smtp.messages().iter().any(|m| {
            m.contains(&format!("To: {}", ana.email))
                && m.contains("change of your Kith email address was requested")
        })
    })
    .await;
    // Nothing changes until the new address is proved.
    assert_eq!(ana.get("/api/v1/me").await.body["email"], ana.email);
    app.sign_in(&ana.email).await;

    let token = nth_token(&smtp, "ana@newclinic.example", 0).await;
    let moved = verify(&app, &token).await;
    assert_eq!(
        moved.assert(StatusCode::OK)["email"],
        "ana@newclinic.example"
    );
    app.sign_in("ana@newclinic.example").await;
    app.login(&ana.email, PASSWORD)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
    wait_for("the old address is told of the change", || {
        smtp.messages().iter().any(|m| {
            m.contains(&format!("To: {}", ana.email))
                && m.contains("Your Kith email address was changed")
        })
    })
    .await;

    // An address another account uses: the same answer, and only that
    // address's owner hears of it.
    let ben = app.register("Ben").await;
    let reply = ben
        .put(
            "/api/v1/me/email",
            json!({"new_email": "ana@newclinic.example", "current_password": PASSWORD}),
        )
        .await;
    reply.assert(StatusCode::ACCEPTED);
    wait_for("the owner is told", || {
        smtp.messages().iter().any(|m| {
            m.contains("To: ana@newclinic.example") && m.contains("already has a Kith account")
        })
    })
    .await;
    assert_eq!(tokens_to(&smtp, "ana@newclinic.example").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_an_address_that_has_an_account_answers_the_same_and_emails_its_owner() {
    let (smtp, app) = app_with_mail().await;
    app.register("Ana").await;
    let register = |email: &str| {
        app.call(
            Method::POST,
            "/api/v1/auth/register",
            Some(json!({"email": email, "password": "another long passphrase here", "display_name": "Impostor"})),
        )
    };
    let taken = register("  ANA@Clinic.Example ").await;
    let fresh = register("nobody@clinic.example").await;
    assert_eq!(taken.status, StatusCode::ACCEPTED);
    assert_eq!(fresh.status, StatusCode::ACCEPTED);
    assert_eq!(
        taken.body["message"]
            .as_str()
            .unwrap()
            .replace("ana@", "X@"),
        fresh.body["message"]
            .as_str()
            .unwrap()
            .replace("nobody@", "X@"),
    );
    wait_for("the owner is told", || {
        smtp.messages().iter().any(|m| {
            m.contains("To: ana@clinic.example") && m.contains("You already have a Kith account")
        })
    })
    .await;
    // Her password and name are untouched; the impostor's password opens nothing.
    app.sign_in("ana@clinic.example").await;
    app.login("ana@clinic.example", "another long passphrase here")
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "invalid_credentials");
}
