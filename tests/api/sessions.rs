//! Supervisor-hosted sessions, the whole story on a controllable clock:
//! schedule, reminders, start, people join, drop and rejoin, lock, end,
//! sign-off, an adjustment, and the ledger and its CSV.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Clinician, ORIGIN, Room, TestApp, open_ws};

/// A supervisor whose licence an administrator verified, signed in with a second factor.
async fn supervisor(app: &TestApp, name: &str) -> Clinician {
    let person = app.register(name).await;
    app.db
        .run_sql(&format!(
            "UPDATE profiles SET license_number = 'PSY-48213', license_states = '{{IL}}' WHERE user_id = '{}'",
            person.id
        ))
        .await;
    app.verify_licence(&person).await;
    app.promote(person, "supervisor").await
}

/// Waits until every room visit of `who` has ended (the server closes it when the socket goes).
async fn left_the_room(app: &TestApp, who: &Clinician) {
    let id = who.id;
    app.eventually("the room visit is closed", async || {
        let mut db = app.db.conn().await;
        let open: i64 = kith::db::schema::room_visits::table
            .filter(
                kith::db::schema::room_visits::user_id
                    .eq(id)
                    .and(kith::db::schema::room_visits::left_at.is_null()),
            )
            .count()
            .get_result(&mut db)
            .await
            .unwrap();
        open == 0
    })
    .await;
}

/// A fresh sign-in at the clock's present (tokens expire as the clock moves).
async fn again(app: &TestApp, who: &Clinician) -> Clinician {
    app.sign_in(&who.email).await
}

fn tomorrow_at_nine_in(app: &TestApp, zone: &str) -> String {
    let tz: chrono_tz::Tz = zone.parse().unwrap();
    let day = (app.clock.now() + Duration::days(2))
        .with_timezone(&tz)
        .date_naive();
    format!("{day}T09:00")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervised_session_from_schedule_to_signed_hours() {
    // Heartbeats off the test's clock: hours pass here in seconds.
    let app = TestApp::spawn_with(|s| {
        s.rooms.heartbeat = std::time::Duration::from_secs(3600);
        s.rooms.peer_timeout = std::time::Duration::from_secs(7200);
    })
    .await;
    let sam = supervisor(&app, "Sam").await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let cleo = app.register("Cleo").await;
    let group = sam.create_group("Clinical supervision", false).await;
    for who in [&ana, &ben, &cleo] {
        sam.bring_in(group, who).await;
    }
    sam.put(
        "/api/v1/me/time-zone",
        json!({"time_zone": "America/Chicago"}),
    )
    .await
    .assert(StatusCode::OK);
    ana.put(
        "/api/v1/me/time-zone",
        json!({"time_zone": "Europe/Berlin"}),
    )
    .await
    .assert(StatusCode::OK);
    ana.put("/api/v1/me/time-zone", json!({"time_zone": "Mars/Olympus"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // Scheduling: 09:00 in Sam's zone, an hour, repeated next week.
    let start = tomorrow_at_nine_in(&app, "America/Chicago");
    let scheduled = sam
        .post(
            &format!("/api/v1/groups/{group}/sessions"),
            json!({"title": "Case review", "agenda": "Two hard cases", "starts_at": start,
                   "planned_minutes": 60, "repeat_weeks": 1}),
        )
        .await;
    let scheduled = scheduled.assert(StatusCode::CREATED).clone();
    assert_eq!(scheduled.as_array().unwrap().len(), 2);
    let session = scheduled[0].clone();
    assert_eq!(session["starts_at_local"], format!("{start}:00-06:00"));
    assert_eq!(session["kind"], "group_supervision");
    let id = session["id"].as_str().unwrap().to_string();
    let starts_at: chrono::DateTime<Utc> = session["starts_at"].as_str().unwrap().parse().unwrap();

    // Bad schedules.
    let sessions = format!("/api/v1/groups/{group}/sessions");
    sam.post(
        &sessions,
        json!({"title": "Again", "starts_at": start, "planned_minutes": 30}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "overlapping_session");
    sam.post(
        &sessions,
        json!({"title": "Past", "starts_at": "2020-01-01T09:00", "planned_minutes": 30}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    sam.post(
        &sessions,
        json!({"title": "Long", "starts_at": "2030-01-01T09:00", "planned_minutes": 481}),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let backwards = sam
        .post(&sessions, json!({"title": "Backwards", "starts_at": "2030-01-01T09:00", "ends_at": "2030-01-01T08:00"}))
        .await;
    backwards.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    assert_eq!(backwards.field(), "ends_at");
    ana.post(
        &sessions,
        json!({"title": "Mine", "starts_at": "2030-01-01T09:00", "planned_minutes": 30}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");

    // Members see it, in their own time zone.
    let upcoming = ana.get("/api/v1/me/sessions").await;
    let upcoming = upcoming.assert(StatusCode::OK).clone();
    assert_eq!(upcoming.as_array().unwrap().len(), 2);
    assert_eq!(upcoming[0]["time_zone"], "Europe/Berlin");
    assert!(
        upcoming[0]["starts_at_local"]
            .as_str()
            .unwrap()
            .ends_with("16:00:00+01:00")
    );

    // Reminders: a day before, then an hour before.
    app.clock
        .advance(starts_at - Duration::hours(23) - app.clock.now());
    kith::groups::sessions::send_reminders(&app.state, app.clock.now())
        .await
        .unwrap();
    app.clock
        .advance(Duration::hours(22) + Duration::minutes(30));
    kith::groups::sessions::send_reminders(&app.state, app.clock.now())
        .await
        .unwrap();
    kith::groups::sessions::send_reminders(&app.state, app.clock.now())
        .await
        .unwrap();
    // A day later: everyone signs in again.
    let ana = again(&app, &ana).await;
    let notes = ana.get("/api/v1/notifications").await;
    let reminders: Vec<Value> = notes.assert(StatusCode::OK)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "session_reminder")
        .cloned()
        .collect();
    assert_eq!(reminders.len(), 2, "{reminders:?}");
    assert!(
        reminders[0]["message"]
            .as_str()
            .unwrap()
            .contains("within the hour")
    );
    assert!(
        reminders[1]["message"]
            .as_str()
            .unwrap()
            .contains("tomorrow")
    );
    let mut db = app.db.conn().await;
    use kith::db::schema::email_outbox;
    let mails: i64 = email_outbox::table
        .filter(
            email_outbox::to_address
                .eq(&ana.email)
                .and(email_outbox::subject.eq("Reminder: Case review")),
        )
        .count()
        .get_result(&mut db)
        .await
        .unwrap();
    assert_eq!(mails, 2);

    // Ana waits in the room; only the host starts.
    let mut a = ana.enter(group).await;
    ana.post(&format!("/api/v1/sessions/{id}/start"), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    app.clock.advance(starts_at - app.clock.now());
    let sam = again(&app, &sam).await;
    let live = sam
        .post(&format!("/api/v1/sessions/{id}/start"), json!({}))
        .await;
    assert_eq!(live.assert(StatusCode::OK)["status"], "live");
    let frame = a.next("session").await;
    assert_eq!(frame["state"], "live");
    assert_eq!(frame["session_id"], id);

    // Ben arrives 10 minutes in; Sam locks the room at 15.
    app.clock.advance(Duration::minutes(10));
    let ben = again(&app, &ben).await;
    let mut b = ben.enter(group).await;
    assert_eq!(b.next("session").await["state"], "live");
    app.clock.advance(Duration::minutes(5));
    let sam = again(&app, &sam).await;
    sam.post(&format!("/api/v1/sessions/{id}/lock"), json!({}))
        .await
        .assert(StatusCode::OK);
    assert_eq!(a.next("session").await["locked"], true);
    // Cleo was not there: she cannot come in now.
    let cleo = again(&app, &cleo).await;
    let ticket = cleo.ticket(None).await;
    let mut c = Room {
        ws: open_ws(cleo.base(), &ticket, Some(ORIGIN)).await.unwrap(),
    };
    c.send(json!({"type": "join", "group_id": group})).await;
    assert_eq!(c.next("error").await["code"], "room_locked");

    // Ben drops at 20 and is back at 21: the same stay. He leaves for good at 40.
    app.clock.advance(Duration::minutes(5));
    drop(b);
    left_the_room(&app, &ben).await;
    app.clock.advance(Duration::minutes(1));
    let ben = again(&app, &ben).await;
    let b = ben.enter(group).await;
    app.clock.advance(Duration::minutes(19));
    drop(b);
    left_the_room(&app, &ben).await;

    // Sam ends the session at 60 minutes.
    app.clock.advance(Duration::minutes(20));
    let (sam, ben, ana) = (
        again(&app, &sam).await,
        again(&app, &ben).await,
        again(&app, &ana).await,
    );
    let ended = sam
        .post(&format!("/api/v1/sessions/{id}/end"), json!({}))
        .await;
    let ended = ended.assert(StatusCode::OK).clone();
    assert_eq!(ended["status"], "ended");
    assert_eq!(a.next("session").await["state"], "ended");
    let minutes: Vec<(String, i64)> = ended["attendance"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["user"]["name"].as_str().unwrap().to_string(),
                l["minutes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        minutes,
        vec![("Ana".to_string(), 60), ("Ben".to_string(), 30)]
    );
    // Ben sees his own line only.
    let his = ben.get(&format!("/api/v1/sessions/{id}")).await;
    let his = his.assert(StatusCode::OK)["attendance"].clone();
    assert_eq!(his.as_array().unwrap().len(), 1);
    assert_eq!(his[0]["minutes"], 30);

    // The host corrects Ben's line, with a reason, before signing; nobody
    // raises their own line, and no line runs past the session's hour.
    let line = format!("/api/v1/sessions/{id}/attendance/{}", ben.id);
    ben.patch(&line, json!({"minutes": 60, "reason": "I was there"}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    sam.patch(&line, json!({"minutes": 35, "reason": ""}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    sam.patch(&line, json!({"minutes": 61, "reason": "Stayed on after"}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    sam.patch(
        &format!("/api/v1/sessions/{id}/attendance/{}", sam.id),
        json!({"minutes": 60, "reason": "Hosted it"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    sam.patch(
        &line,
        json!({"minutes": 35, "reason": "Joined by phone for five more minutes"}),
    )
    .await
    .assert(StatusCode::OK);
    // Sign-off by the host only, under his verified licence; then nothing changes.
    ben.post(&format!("/api/v1/sessions/{id}/sign-off"), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let signed = sam
        .post(&format!("/api/v1/sessions/{id}/sign-off"), json!({}))
        .await;
    let signed = signed.assert(StatusCode::OK).clone();
    assert_eq!(signed["attendance"][1]["signer_name"], "Sam");
    assert_eq!(signed["attendance"][1]["signer_license"], "IL PSY-48213");
    sam.post(&format!("/api/v1/sessions/{id}/sign-off"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "already_signed");
    sam.patch(&line, json!({"minutes": 60, "reason": "Second thoughts"}))
        .await
        .assert_error(StatusCode::CONFLICT, "already_signed");
    app.seal_audit().await;
    let admin = app.admin("Root").await;
    let audit = admin
        .get("/api/v1/admin/audit?action=session.attendance_adjusted")
        .await;
    let entry = &audit.assert(StatusCode::OK)[0];
    assert_eq!(entry["detail"]["from"], 30);
    assert_eq!(entry["detail"]["to"], 35);

    // Past sessions, listed: the host sees every line, a member only his own.
    let hosted = sam.get(&format!("{sessions}?past=true")).await;
    let hosted = hosted.assert(StatusCode::OK).clone();
    let past: Vec<_> = hosted
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] == id.as_str())
        .collect();
    assert_eq!(past.len(), 1);
    assert_eq!(past[0]["group_name"], "Clinical supervision");
    assert_eq!(past[0]["host"]["name"], "Sam");
    assert_eq!(past[0]["attendance"].as_array().unwrap().len(), 2);
    assert_eq!(past[0]["attendance"][1]["minutes"], 35);
    for listing in [
        format!("{sessions}?past=true"),
        "/api/v1/me/sessions?past=true".to_string(),
    ] {
        let mine = ben.get(&listing).await;
        let mine = mine.assert(StatusCode::OK).clone();
        let line = &mine
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id.as_str())
            .unwrap()["attendance"];
        assert_eq!(line.as_array().unwrap().len(), 1, "{listing}");
        assert_eq!(line[0]["user"]["name"], "Ben");
        assert_eq!(line[0]["minutes"], 35);
    }

    // Ben's ledger and its CSV.
    let ledger = ben.get("/api/v1/me/supervision-hours").await;
    let ledger = ledger.assert(StatusCode::OK).clone();
    assert_eq!(ledger["total_hours"], 0.58);
    assert_eq!(ledger["by_kind"][0]["key"], "group_supervision");
    assert_eq!(ledger["by_kind"][0]["minutes"], 35);
    assert_eq!(ledger["by_supervisor"][0]["key"], "Sam");
    assert_eq!(
        ledger["lines"][0]["adjusted_reason"],
        "Joined by phone for five more minutes"
    );
    let csv = reqwest::Client::new()
        .get(app.url("/api/v1/me/supervision-hours.csv"))
        .bearer_auth(&ben.access)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        "date,group,session,kind,minutes,hours,supervisor,supervisor_license,signed_at,adjusted_reason,supervisee,dispute_note"
    );
    let date = ledger["lines"][0]["date"].as_str().unwrap();
    assert!(
        rows[1].starts_with(&format!(
            "{date},Clinical supervision,Case review,group_supervision,35,0.58,Sam,IL PSY-48213,"
        )),
        "{}",
        rows[1]
    );
    assert!(
        rows[1].ends_with(
            ",Joined by phone for five more minutes,awaiting the supervisee's confirmation,"
        ),
        "{}",
        rows[1]
    );
    assert_eq!(rows.len(), 2);

    // Ben disputes his line; every export says so. Ana confirms her hour.
    let dispute = format!("/api/v1/me/supervision-hours/{id}/dispute");
    ben.post(&dispute, json!({"note": ""}))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    let disputed = ben
        .post(&dispute, json!({"note": "I stayed the whole hour."}))
        .await;
    let disputed = disputed.assert(StatusCode::OK);
    assert_eq!(disputed["lines"][0]["answer"], "disputed");
    assert_eq!(
        disputed["lines"][0]["answer_note"],
        "I stayed the whole hour."
    );
    ben.post(
        &format!("/api/v1/me/supervision-hours/{id}/confirm"),
        json!({}),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "already_answered");
    let csv = reqwest::Client::new()
        .get(app.url("/api/v1/me/supervision-hours.csv"))
        .bearer_auth(&ben.access)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .ends_with(",DISPUTED by the supervisee,I stayed the whole hour."),
        "{csv}"
    );
    let hers = ana
        .post(
            &format!("/api/v1/me/supervision-hours/{id}/confirm"),
            json!({}),
        )
        .await;
    let hers = hers.assert(StatusCode::OK);
    assert_eq!(hers["total_hours"], 1.0);
    assert_eq!(hers["lines"][0]["answer"], "confirmed");
    // Sam has no line of his own in it to answer.
    sam.post(
        &format!("/api/v1/me/supervision-hours/{id}/confirm"),
        json!({}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    // A cancelled session frees its slot; a live one cannot be cancelled twice over.
    let next = scheduled[1]["id"].as_str().unwrap();
    sam.post(&format!("/api/v1/sessions/{next}/cancel"), json!({}))
        .await
        .assert(StatusCode::OK);
    sam.post(&format!("/api/v1/sessions/{next}/start"), json!({}))
        .await
        .assert_error(StatusCode::CONFLICT, "invalid_transition");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_who_is_only_a_member_moderates_while_hosting() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let sam = supervisor(&app, "Sam").await;
    let group = ana.create_group("Peer consultation", false).await;
    ana.bring_in(group, &sam).await;
    ana.bring_in(group, &ben).await;
    let start = tomorrow_at_nine_in(&app, "UTC");
    let made = sam
        .post(
            &format!("/api/v1/groups/{group}/sessions"),
            json!({"title": "Consultation hour", "kind": "peer_consultation", "starts_at": start, "planned_minutes": 45}),
        )
        .await;
    let id = made.assert(StatusCode::CREATED)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mute = format!("/api/v1/groups/{group}/members/{}/mute", ben.id);
    sam.post(&mute, json!({"minutes": 5}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A member who neither hosts the group nor scheduled it may not start it.
    ben.post(&format!("/api/v1/sessions/{id}/start"), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    sam.post(&format!("/api/v1/sessions/{id}/start"), json!({}))
        .await
        .assert(StatusCode::OK);
    sam.post(&mute, json!({"minutes": 5}))
        .await
        .assert(StatusCode::OK);
    sam.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/members/{}", ana.id),
        None,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    sam.post(&format!("/api/v1/sessions/{id}/end"), json!({}))
        .await
        .assert(StatusCode::OK);
    sam.post(&mute, json!({"minutes": 0}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_forges_supervision_hours() {
    let app = TestApp::spawn().await;
    let start = tomorrow_at_nine_in(&app, "UTC");
    let supervision = |title: &str| json!({"title": title, "kind": "group_supervision", "starts_at": start, "planned_minutes": 60});

    // A clinician who makes a group is its host, but not a supervisor: no
    // supervision hours from her sessions (peer consultation is hers to run).
    let mia = app.register("Mia").await;
    let group = mia.create_group("Hours for me", false).await;
    let sessions = format!("/api/v1/groups/{group}/sessions");
    let refused = mia.post(&sessions, supervision("Supervision")).await;
    refused.assert_error(StatusCode::FORBIDDEN, "forbidden");
    assert!(
        refused.assert(StatusCode::FORBIDDEN)["message"]
            .as_str()
            .unwrap()
            .contains("supervisor")
    );
    mia.post(
        &sessions,
        json!({"title": "Peer hour", "kind": "peer_consultation", "starts_at": start, "planned_minutes": 60}),
    )
    .await
    .assert(StatusCode::CREATED);

    // A supervisor whose licence nobody verified cannot either.
    let una = app.register("Una").await;
    app.db
        .run_sql(&format!(
            "UPDATE profiles SET license_number = 'LCSW-1', license_states = '{{IL}}' WHERE user_id = '{}'",
            una.id
        ))
        .await;
    let una = app.promote(una, "supervisor").await;
    mia.bring_in(group, &una).await;
    let refused = una
        .post(&sessions, supervision("Unverified supervision"))
        .await;
    assert!(
        refused.assert(StatusCode::FORBIDDEN)["message"]
            .as_str()
            .unwrap()
            .contains("verified licence")
    );

    // A verified supervisor hosts; a co-host is made; the supervisor is then
    // removed from the group and keeps no authority over the session.
    let sam = supervisor(&app, "Sam").await;
    let ben = app.register("Ben").await;
    let group = sam.create_group("Supervision group", false).await;
    sam.bring_in(group, &ben).await;
    let cora = app.register("Cora").await;
    sam.bring_in(group, &cora).await;
    sam.patch(
        &format!("/api/v1/groups/{group}/members/{}", cora.id),
        json!({"role": "host"}),
    )
    .await
    .assert(StatusCode::OK);
    let made = sam
        .post(
            &format!("/api/v1/groups/{group}/sessions"),
            supervision("Case review"),
        )
        .await;
    let id = made.assert(StatusCode::CREATED)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    cora.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/members/{}", sam.id),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    for step in ["start", "lock", "end", "sign-off"] {
        sam.post(&format!("/api/v1/sessions/{id}/{step}"), json!({}))
            .await
            .assert_error(StatusCode::NOT_FOUND, "not_found");
    }
    sam.get(&format!("/api/v1/sessions/{id}"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    sam.patch(
        &format!("/api/v1/sessions/{id}/attendance/{}", ben.id),
        json!({"minutes": 60, "reason": "x"}),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "not_found");

    // The remaining host runs it, but is no supervisor: Ben's half hour is
    // measured, and stays unsigned.
    cora.post(&format!("/api/v1/sessions/{id}/start"), json!({}))
        .await
        .assert(StatusCode::OK);
    let room = ben.enter(group).await;
    app.clock.advance(Duration::minutes(30));
    let cora = again(&app, &cora).await;
    let ended = cora
        .post(&format!("/api/v1/sessions/{id}/end"), json!({}))
        .await;
    let lines = ended.assert(StatusCode::OK)["attendance"].clone();
    drop(room);
    assert_eq!(lines.as_array().unwrap().len(), 1, "{lines}");
    assert_eq!(lines[0]["user"]["name"], "Ben");
    assert_eq!(lines[0]["minutes"], 30);
    cora.patch(
        &format!("/api/v1/sessions/{id}/attendance/{}", cora.id),
        json!({"minutes": 30, "reason": "I ran it"}),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    cora.post(&format!("/api/v1/sessions/{id}/sign-off"), json!({}))
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let after = cora.get(&format!("/api/v1/sessions/{id}")).await;
    let after = after.assert(StatusCode::OK);
    assert_eq!(after["attendance"][0]["user"]["name"], "Ben", "{after}");
    assert!(
        after["signed_at"].is_null() && after["attendance"][0]["signed_at"].is_null(),
        "{after}"
    );
    let ben = again(&app, &ben).await;
    let ledger = ben.get("/api/v1/me/supervision-hours").await;
    assert_eq!(
        ledger.assert(StatusCode::OK)["lines"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_name_a_spreadsheet_would_run_is_exported_as_text() {
    let app = TestApp::spawn().await;
    let sam = supervisor(&app, "Sam").await;
    let ben = app.register("Ben").await;
    let made = sam
        .post(
            "/api/v1/groups",
            json!({"name": "=HYPERLINK(\"http://evil.example\",\"Hours\")", "topic": "-1+2"}),
        )
        .await;
    let group = made.assert(StatusCode::CREATED)["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    sam.bring_in(group, &ben).await;
    let start = tomorrow_at_nine_in(&app, "UTC");
    let made = sam
        .post(
            &format!("/api/v1/groups/{group}/sessions"),
            json!({"title": "@SUM(A1:A9)", "starts_at": start, "planned_minutes": 30}),
        )
        .await;
    let id = made.assert(StatusCode::CREATED)[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    sam.post(&format!("/api/v1/sessions/{id}/start"), json!({}))
        .await
        .assert(StatusCode::OK);
    let room = ben.enter(group).await;
    app.clock.advance(Duration::minutes(30));
    let sam = again(&app, &sam).await;
    sam.post(&format!("/api/v1/sessions/{id}/end"), json!({}))
        .await
        .assert(StatusCode::OK);
    drop(room);
    sam.post(&format!("/api/v1/sessions/{id}/sign-off"), json!({}))
        .await
        .assert(StatusCode::OK);
    let ben = again(&app, &ben).await;
    let csv = reqwest::Client::new()
        .get(app.url("/api/v1/me/supervision-hours.csv"))
        .bearer_auth(&ben.access)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row = csv.lines().nth(1).expect("Ben's line");
    assert!(
        row.contains(r#""'=HYPERLINK(""http://evil.example"",""Hours"")""#),
        "{row}"
    );
    assert!(row.contains(",'@SUM(A1:A9),"), "{row}");
}
