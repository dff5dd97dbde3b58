//! Consultation rooms over websockets, with a real client against a real
//! server: who may connect, one order for everyone, history and resume,
//! the privacy guard, moderation, limits, and two instances as one chat.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Clinician, ORIGIN, TestApp, open_ws, refused_status};

async fn trio(app: &TestApp) -> (Clinician, Clinician, Clinician, uuid::Uuid) {
    let ana = app.register("Ana").await;
    let ben = app.register("Ben").await;
    let cleo = app.register("Cleo").await;
    let group = ana.create_group("Anxiety consultation", false).await;
    ana.bring_in(group, &ben).await;
    ana.bring_in(group, &cleo).await;
    (ana, ben, cleo, group)
}

fn ids(messages: &[Value]) -> Vec<i64> {
    messages.iter().map(|m| m["id"].as_i64().unwrap()).collect()
}

fn bodies(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["body"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_members_with_a_fresh_ticket_from_an_allowed_origin_get_in() {
    let app = TestApp::spawn().await;
    let ana = app.register("Ana").await;
    let eve = app.register("Eve").await;
    let group = ana.create_group("Private", false).await;
    let base = ana.base().to_string();

    // No ticket, a made-up ticket.
    assert_eq!(
        refused_status(open_ws(&base, "nonsense", Some(ORIGIN)).await),
        401
    );
    // The ticket endpoint needs a sign-in, and a non-member gets no ticket for the group.
    app.call(reqwest::Method::POST, "/api/v1/ws/ticket", Some(json!({})))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    eve.post("/api/v1/ws/ticket", json!({"group_id": group}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");

    // Origin: missing or foreign is refused before the upgrade (and the ticket is not spent).
    let ticket = ana.ticket(Some(group)).await;
    assert_eq!(refused_status(open_ws(&base, &ticket, None).await), 403);
    assert_eq!(
        refused_status(open_ws(&base, &ticket, Some("https://evil.example")).await),
        403
    );
    // The right origin gets in, once.
    let ws = open_ws(&base, &ticket, Some(ORIGIN)).await;
    assert!(ws.is_ok());
    assert_eq!(
        refused_status(open_ws(&base, &ticket, Some(ORIGIN)).await),
        401
    );

    // A ticket for a group the holder has since left is refused before the upgrade.
    let ben = app.register("Ben").await;
    ana.bring_in(group, &ben).await;
    let ticket = ben.ticket(Some(group)).await;
    ana.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/members/{}", ben.id),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    assert_eq!(
        refused_status(open_ws(&base, &ticket, Some(ORIGIN)).await),
        403
    );

    // A ticket without a group connects, but joining someone else's room is refused.
    let ticket = eve.ticket(None).await;
    let ws = open_ws(&base, &ticket, Some(ORIGIN)).await.unwrap();
    let mut room = crate::support::Room { ws };
    room.send(json!({"type": "join", "group_id": group})).await;
    assert_eq!(room.next("error").await["code"], "not_a_member");
    room.say("c1", "hello?").await;
    assert_eq!(room.next("error").await["code"], "not_in_room");

    // Expired tickets do not work.
    let ticket = ana.ticket(Some(group)).await;
    app.db
        .run_sql("UPDATE ws_tickets SET expires_at = now() - interval '1 second'")
        .await;
    assert_eq!(
        refused_status(open_ws(&base, &ticket, Some(ORIGIN)).await),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_in_the_room_sees_every_message_in_the_same_order() {
    let app = TestApp::spawn().await;
    let (ana, ben, cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    let mut b = ben.enter(group).await;
    let mut c = cleo.enter(group).await;

    // Three people talk at once.
    for i in 0..5 {
        a.say(&format!("a{i}"), &format!("Ana {i}")).await;
        b.say(&format!("b{i}"), &format!("Ben {i}")).await;
        c.say(&format!("c{i}"), &format!("Cleo {i}")).await;
    }
    let seen_a = a.messages(15).await;
    let seen_b = b.messages(15).await;
    let seen_c = c.messages(15).await;
    assert_eq!(ids(&seen_a), ids(&seen_b));
    assert_eq!(ids(&seen_a), ids(&seen_c));
    let mut sorted = ids(&seen_a);
    sorted.sort();
    assert_eq!(ids(&seen_a), sorted, "in id order");
    // Each author's own messages keep their order, and carry their client_id.
    let anas: Vec<&Value> = seen_b
        .iter()
        .filter(|m| m["author"]["name"] == "Ana")
        .collect();
    let client_ids: Vec<&str> = anas
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(client_ids, vec!["a0", "a1", "a2", "a3", "a4"]);
    assert_eq!(anas[0]["body"], "Ana 0");
    assert_eq!(anas[0]["author"]["id"], ana.id.to_string());

    // A retried say (same client_id) is stored once: the retrier gets it back, nobody sees it twice.
    a.say("a4", "Ana 4").await;
    let again = a.next("message").await;
    assert_eq!(again["id"], anas[4]["id"]);
    b.no_message_for(300).await;
    let history = ben.get(&format!("/api/v1/groups/{group}/messages")).await;
    assert_eq!(
        history.assert(StatusCode::OK)["messages"]
            .as_array()
            .unwrap()
            .len(),
        15
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_backwards_and_resume_replays_exactly_what_was_missed() {
    let app = TestApp::spawn().await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    for i in 1..=7 {
        a.say(&format!("m{i}"), &format!("message {i}")).await;
    }
    let first = a.messages(7).await;

    // History: newest page first, each page oldest first, until the beginning.
    let mut pages = Vec::new();
    let mut before = String::new();
    loop {
        let page = ben
            .get(&format!("/api/v1/groups/{group}/messages?limit=3{before}"))
            .await;
        let page = page.assert(StatusCode::OK).clone();
        pages.push(bodies(page["messages"].as_array().unwrap()));
        match page["next_before"].as_i64() {
            Some(id) => before = format!("&before={id}"),
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![
            vec!["message 5", "message 6", "message 7"],
            vec!["message 2", "message 3", "message 4"],
            vec!["message 1"],
        ]
    );
    ben.get(&format!("/api/v1/groups/{group}/messages?limit=0"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");
    ben.get(&format!("/api/v1/groups/{group}/messages?before=abc"))
        .await
        .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field");

    // Ben was here until message 3, dropped, and comes back.
    let seen_until = first[2]["id"].as_i64().unwrap();
    let ticket = ben.ticket(Some(group)).await;
    let ws = open_ws(ben.base(), &ticket, Some(ORIGIN)).await.unwrap();
    let mut b = crate::support::Room { ws };
    b.next("joined").await;
    b.send(json!({"type": "resume", "after_id": seen_until}))
        .await;
    let replayed = b.messages(4).await;
    assert_eq!(
        bodies(&replayed),
        vec!["message 4", "message 5", "message 6", "message 7"]
    );
    let end = b.next("replayed").await;
    assert_eq!(end["count"], 4);
    // Live from here on, without a gap or a repeat.
    a.say("m8", "message 8").await;
    assert_eq!(bodies(&b.messages(1).await), vec!["message 8"]);
    b.no_message_for(200).await;

    // Joining with after_id does the same in one step.
    let ticket = ben.ticket(None).await;
    let ws = open_ws(ben.base(), &ticket, Some(ORIGIN)).await.unwrap();
    let mut b2 = crate::support::Room { ws };
    b2.send(json!({"type": "join", "group_id": group, "after_id": first[5]["id"]}))
        .await;
    let joined = b2.next("joined").await;
    assert!(joined["last_id"].as_i64().unwrap() > first[6]["id"].as_i64().unwrap());
    assert_eq!(
        bodies(&b2.messages(2).await),
        vec!["message 7", "message 8"]
    );
    assert_eq!(b2.next("replayed").await["count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_privacy_guard_holds_identifiers_until_the_sender_confirms() {
    let app = TestApp::spawn().await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    let mut b = ben.enter(group).await;

    let text = "Her mother can be reached at (555) 123-4567 if needed";
    a.say("p1", text).await;
    let warning = a.next("warning").await;
    assert_eq!(warning["code"], "possible_identifier");
    assert_eq!(warning["client_id"], "p1");
    let span = &warning["spans"][0];
    assert_eq!(span["kind"], "phone");
    let (start, end) = (
        span["start"].as_u64().unwrap() as usize,
        span["end"].as_u64().unwrap() as usize,
    );
    assert_eq!(&text[start..end], "(555) 123-4567");
    // Held: nobody saw it, nothing was stored.
    b.no_message_for(300).await;
    let history = ben.get(&format!("/api/v1/groups/{group}/messages")).await;
    assert_eq!(history.assert(StatusCode::OK)["messages"], json!([]));

    // The sender confirms: now it is posted.
    a.send(json!({"type": "say", "client_id": "p1", "body": text, "confirm": true}))
        .await;
    assert_eq!(b.next("message").await["body"], text);

    // A message without identifiers goes straight through.
    a.say("p2", "Has anyone tried EMDR for this?").await;
    assert_eq!(
        b.next("message").await["body"],
        "Has anyone tried EMDR for this?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderators_delete_messages_mute_and_remove_members_in_the_room() {
    let app = TestApp::spawn().await;
    let (ana, ben, cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    let mut b = ben.enter(group).await;
    let mut c = cleo.enter(group).await;

    c.say("c1", "an unkind remark").await;
    let message = a.next("message").await;
    b.next("message").await;
    c.next("message").await;
    let id = message["id"].as_i64().unwrap();

    // A member cannot delete someone else's message; the host can.
    ben.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/messages/{id}"),
        None,
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    ana.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/messages/{id}"),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    for room in [&mut a, &mut b, &mut c] {
        let tombstone = room.next("deleted").await;
        assert_eq!(tombstone["id"], id);
    }
    let history = ben.get(&format!("/api/v1/groups/{group}/messages")).await;
    let shown = &history.assert(StatusCode::OK)["messages"][0];
    assert_eq!(shown["deleted"], true);
    assert_eq!(shown["body"], Value::Null);

    // Muted: Cleo is told, and her open connection cannot post.
    ana.post(
        &format!("/api/v1/groups/{group}/members/{}/mute", cleo.id),
        json!({"minutes": 15}),
    )
    .await
    .assert(StatusCode::OK);
    let standing = c.next("membership").await;
    assert!(standing["muted_until"].is_string());
    c.say("c2", "still here").await;
    let refused = c.next("error").await;
    assert_eq!(refused["code"], "muted");
    assert_eq!(refused["client_id"], "c2");
    b.no_message_for(200).await;

    // Removed: her connection is closed at once, and the others carry on.
    ana.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/members/{}", cleo.id),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    let last_words = c.closed().await;
    assert!(
        last_words.iter().any(|f| f["type"] == "removed"),
        "told why: {last_words:?}"
    );
    b.say("b1", "carrying on").await;
    assert_eq!(a.next("message").await["body"], "carrying on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_reach_the_others() {
    let app = TestApp::spawn().await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    let mut b = ben.enter(group).await;
    let came = a.next("presence_change").await;
    assert_eq!(came["user"]["name"], "Ben");
    assert_eq!(came["online"], true);

    b.send(json!({"type": "typing"})).await;
    let typing = a.next("typing").await;
    assert_eq!(typing["user"]["name"], "Ben");

    // A newcomer is told who is there.
    let ticket = ana.ticket(Some(group)).await;
    let ws = open_ws(ana.base(), &ticket, Some(ORIGIN)).await.unwrap();
    let mut a2 = crate::support::Room { ws };
    a2.next("joined").await;
    let presence = a2.next("presence").await;
    let mut names: Vec<&str> = presence["online"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Ana", "Ben"]);

    b.send(json!({"type": "leave"})).await;
    b.next("left").await;
    let went = a.next("presence_change").await;
    assert_eq!(went["user"]["name"], "Ben");
    assert_eq!(went["online"], false);
    // Ana has two connections: closing one keeps her online.
    drop(a2);
    b.send(json!({"type": "join", "group_id": group})).await;
    b.next("joined").await;
    let presence = b.next("presence").await;
    assert_eq!(presence["online"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_frames_and_limits_hold() {
    let app = TestApp::spawn().await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    let mut b = ben.enter(group).await;

    // Not JSON, unknown type, missing field: an error frame, and the connection lives on.
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    a.ws.send(Message::text("{oops")).await.unwrap();
    assert_eq!(a.next("error").await["code"], "invalid_json");
    a.send(json!({"type": "shout"})).await;
    assert_eq!(a.next("error").await["code"], "unknown_type");
    a.send(json!({"type": "say", "body": "no id"})).await;
    assert_eq!(a.next("error").await["code"], "invalid_frame");
    a.ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(a.next("error").await["code"], "binary_not_supported");

    // Over 4,000 characters (but a small frame): refused, not stored.
    a.say("long", &"é".repeat(4001)).await;
    let refused = a.next("error").await;
    assert_eq!(refused["code"], "message_too_long");
    assert_eq!(refused["client_id"], "long");
    a.say("blank", "   ").await;
    assert_eq!(a.next("error").await["code"], "empty_message");

    // Ten messages in ten seconds, then a pause is asked for.
    for i in 0..10 {
        a.say(&format!("r{i}"), &format!("burst {i}")).await;
    }
    assert_eq!(b.messages(10).await.len(), 10);
    a.say("r10", "one too many").await;
    let limited = loop {
        let frame = a.next_any().await;
        if frame["type"] == "error" {
            break frame;
        }
    };
    assert_eq!(limited["code"], "rate_limited");
    assert!(limited["retry_after_ms"].as_u64().unwrap() > 0);
    b.no_message_for(200).await;

    // A frame over 16 KiB: an error frame, then the connection is closed.
    a.say("huge", &"x".repeat(17 * 1024)).await;
    let last = a.closed().await;
    assert!(
        last.iter()
            .any(|f| f["type"] == "error" && f["code"] == "frame_too_large"),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_dropped_and_a_signed_out_one_is_closed() {
    let app = TestApp::spawn_with(|s| {
        s.rooms.heartbeat = Duration::from_millis(100);
        s.rooms.peer_timeout = Duration::from_millis(400);
    })
    .await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    let ticket = ana.ticket(Some(group)).await;
    let ws = open_ws(ana.base(), &ticket, Some(ORIGIN)).await.unwrap();
    // Never read, so never answer a ping: dropped after the timeout.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let mut silent = crate::support::Room { ws };
    silent.closed().await;

    // A reading client answers pings and stays.
    let mut b = ben.enter(group).await;
    b.no_message_for(800).await;
    // Signing out closes its connections.
    ben.post("/api/v1/auth/logout", json!({"refresh_token": ben.refresh}))
        .await;
    let last = b.closed().await;
    assert!(
        last.iter().any(|f| f["code"] == "session_ended"),
        "{last:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_form_one_chat() {
    let app = TestApp::spawn().await;
    let other = app.sibling().await;
    let (ana, ben, cleo, group) = trio(&app).await;
    let ben_there = ben.via(&other.base);
    let cleo_there = cleo.via(&other.base);

    let mut a = ana.enter(group).await; // instance 1
    let mut b = ben_there.enter(group).await; // instance 2
    let came = a.next("presence_change").await;
    assert_eq!(came["user"]["name"], "Ben");

    for i in 0..5 {
        a.say(&format!("a{i}"), &format!("from one {i}")).await;
        b.say(&format!("b{i}"), &format!("from two {i}")).await;
    }
    let seen_a = a.messages(10).await;
    let seen_b = b.messages(10).await;
    assert_eq!(ids(&seen_a), ids(&seen_b), "one order across instances");

    // Moderation on instance 1 reaches a connection on instance 2.
    let mut c = cleo_there.enter(group).await;
    ana.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/members/{}", cleo.id),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    let last = c.closed().await;
    assert!(last.iter().any(|f| f["type"] == "removed"));
    let id = seen_a[0]["id"].as_i64().unwrap();
    ana.call(
        reqwest::Method::DELETE,
        &format!("/api/v1/groups/{group}/messages/{id}"),
        None,
    )
    .await
    .assert(StatusCode::NO_CONTENT);
    assert_eq!(b.next("deleted").await["id"], id);
    assert_eq!(a.next("deleted").await["id"], id);

    // When instance 2 stops, its people are seen to leave.
    other.handle.stop(false).await;
    let closed = b.closed().await;
    assert!(closed.iter().all(|f| f["type"] != "message"));
    loop {
        let change = a.next("presence_change").await;
        if change["user"]["name"] == "Ben" {
            assert_eq!(change["online"], false);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_reconnects_and_catches_up_without_gaps() {
    let app = TestApp::spawn().await;
    let other = app.sibling().await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await; // instance 1
    let mut b = ben.via(&other.base).enter(group).await; // instance 2
    a.next("presence_change").await;

    a.say("before", "before the outage").await;
    assert_eq!(b.next("message").await["body"], "before the outage");

    // Cut instance 2's listening connection, and keep talking meanwhile.
    let db = app.db.name.clone();
    let mut admin = app.db.conn().await;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Killed {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        #[allow(dead_code)]
        done: bool,
    }
    let listener = format!("kith-rooms-listener-{}", other.state.hub.instance);
    let killed: Vec<Killed> = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
          WHERE datname = '{db}' AND application_name = '{listener}'"
    ))
    .load(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed.len(), 1, "instance 2 had one listening connection");
    for i in 0..6 {
        a.say(&format!("during{i}"), &format!("during {i}")).await;
    }
    let seen = b.messages(6).await;
    assert_eq!(
        bodies(&seen),
        (0..6).map(|i| format!("during {i}")).collect::<Vec<_>>()
    );
    a.say("after", "after the outage").await;
    assert_eq!(b.next("message").await["body"], "after the outage");
    b.no_message_for(200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_is_capped_at_the_newest_messages_and_says_where_history_takes_over() {
    let app = TestApp::spawn_with(|s| s.rooms.replay_cap = 5).await;
    let (ana, ben, _cleo, group) = trio(&app).await;
    app.db
        .run_sql(&format!(
            "INSERT INTO messages (group_id, author_id, client_id, body, created_at) \
             SELECT '{group}', '{}', 'c' || i, 'message ' || i, now() FROM generate_series(1, 12) i",
            ana.id
        ))
        .await;
    let mut b = ben.enter(group).await;
    b.send(json!({"type": "resume", "after_id": 0})).await;
    let replayed = b.messages(5).await;
    assert_eq!(
        bodies(&replayed),
        [
            "message 8",
            "message 9",
            "message 10",
            "message 11",
            "message 12"
        ]
    );
    let end = b.next("replayed").await;
    assert_eq!(end["count"], 5);
    let older_before = end["older_before"].as_i64().expect("older_before");
    assert_eq!(older_before, ids(&replayed)[0]);
    // The rest is one HTTP page away.
    let page = ben
        .get(&format!(
            "/api/v1/groups/{group}/messages?before={older_before}&limit=100"
        ))
        .await;
    let older = page.assert(StatusCode::OK)["messages"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(older.len(), 7);
    assert_eq!(older[6]["body"], "message 7");
    // A replay within the cap says nothing about older messages.
    b.send(json!({"type": "resume", "after_id": ids(&replayed)[2]}))
        .await;
    assert_eq!(bodies(&b.messages(2).await), ["message 11", "message 12"]);
    let end = b.next("replayed").await;
    assert!(end.get("older_before").is_none(), "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_resume_and_typing_frames_are_limited_per_connection() {
    let app = TestApp::spawn_with(|s| s.rooms.rate_control = 3).await;
    let (ana, _ben, _cleo, group) = trio(&app).await;
    let ticket = ana.ticket(None).await;
    let ws = open_ws(ana.base(), &ticket, Some(ORIGIN)).await.unwrap();
    let mut a = crate::support::Room { ws };
    for _ in 0..6 {
        a.send(json!({"type": "join", "group_id": group})).await;
    }
    let mut joined = 0;
    let mut limited = 0;
    while let Some(frame) = a.recv(Duration::from_millis(800)).await {
        match frame["type"].as_str() {
            Some("joined") => joined += 1,
            Some("error") if frame["code"] == "rate_limited" => {
                assert!(frame["retry_after_ms"].as_u64().unwrap() > 0);
                limited += 1;
            }
            _ => {}
        }
    }
    assert_eq!((joined, limited), (3, 3));
    // Only the joins acted on became visits.
    let mut conn = app.db.conn().await;
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    let visits: i64 = kith::db::schema::room_visits::table
        .filter(kith::db::schema::room_visits::user_id.eq(ana.id))
        .count()
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(visits, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_holds_a_bounded_number_of_room_connections() {
    let app = TestApp::spawn_with(|s| s.rooms.connections_per_person = 2).await;
    let (ana, _ben, _cleo, group) = trio(&app).await;
    let first = ana.enter(group).await;
    let _second = ana.enter(group).await;
    let ticket = ana.ticket(Some(group)).await;
    let third = open_ws(ana.base(), &ticket, Some(ORIGIN)).await;
    assert_eq!(refused_status(third), 429);
    // Closing one frees its place.
    drop(first);
    app.eventually("the closed connection is counted out", async || {
        let ticket = ana.ticket(Some(group)).await;
        open_ws(ana.base(), &ticket, Some(ORIGIN)).await.is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fragmented_message_over_the_limit_is_refused_like_one_large_frame() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::{
        Message,
        protocol::frame::{
            Frame,
            coding::{Data, OpCode},
        },
    };
    let app = TestApp::spawn().await;
    let (ana, _ben, _cleo, group) = trio(&app).await;
    let mut a = ana.enter(group).await;
    let piece = "x".repeat(8 * 1024);
    a.ws.send(Message::Frame(Frame::message(
        piece.clone(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    for last in [false, true] {
        a.ws.send(Message::Frame(Frame::message(
            piece.clone(),
            OpCode::Data(Data::Continue),
            last,
        )))
        .await
        .unwrap();
    }
    let (seen, code) = a.closed_with_code().await;
    assert!(
        seen.iter()
            .any(|f| f["type"] == "error" && f["code"] == "frame_too_large"),
        "{seen:?}"
    );
    assert_eq!(code, Some(1009));
}
