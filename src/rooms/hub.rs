//! This instance's rooms: which of its connections are in which group's room,
//! how far each room has been delivered, who is online. The listener feeds
//! it; connections register and deregister. Sending never waits: a
//! connection whose queue is full is dropped rather than slowing the room.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytestring::ByteString;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::auth::users::Person;

/// A frame on its way to one connection, serialised once for the whole room.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub group: Uuid,
    /// For chat messages: the id, so a connection never sends one twice.
    pub message_id: Option<i64>,
    pub text: ByteString,
}

/// Why a connection is being closed from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Its queue filled up: the client reads too slowly.
    TooSlow,
    /// Removed from the group.
    Removed,
}

/// Closes one connection from outside its task.
#[derive(Debug, Default)]
pub struct Kill {
    cause: OnceLock<Cause>,
    notify: Notify,
}

impl Kill {
    pub fn fire(&self, cause: Cause) {
        if self.cause.set(cause).is_ok() {
            self.notify.notify_one();
        }
    }

    pub fn cause(&self) -> Option<Cause> {
        self.cause.get().copied()
    }

    /// Resolves once fired.
    pub async fn fired(&self) -> Cause {
        loop {
            if let Some(cause) = self.cause() {
                return cause;
            }
            self.notify.notified().await;
        }
    }
}

#[derive(Clone)]
pub struct Connection {
    pub user: Uuid,
    pub tx: mpsc::Sender<Outgoing>,
    pub kill: Arc<Kill>,
}

struct Room {
    /// The last message id handed to this room's connections.
    cursor: i64,
    online: Vec<Person>,
    connections: HashMap<u64, Connection>,
}

pub struct Hub {
    /// This server instance, as its room visits name it.
    pub instance: Uuid,
    rooms: Mutex<HashMap<Uuid, Room>>,
    next_connection: AtomicU64,
    /// Recent posts per person, for the rate limit.
    posts: Mutex<HashMap<Uuid, VecDeque<Instant>>>,
    /// Open websockets per person on this instance.
    sockets: Mutex<HashMap<Uuid, usize>>,
}

/// One of a person's open websockets, counted until it is dropped.
pub struct SocketSlot {
    hub: Arc<Hub>,
    user: Uuid,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut sockets = lock(&self.hub.sockets);
        if let Some(n) = sockets.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                sockets.remove(&self.user);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    pub fn new() -> Self {
        Self {
            instance: Uuid::now_v7(),
            rooms: Mutex::default(),
            next_connection: AtomicU64::new(1),
            posts: Mutex::default(),
            sockets: Mutex::default(),
        }
    }

    /// A slot for one more websocket of `user`, unless they hold `max` already.
    pub fn open_socket(self: &Arc<Self>, user: Uuid, max: usize) -> Option<SocketSlot> {
        let mut sockets = lock(&self.sockets);
        let open = sockets.entry(user).or_default();
        if *open >= max {
            return None;
        }
        *open += 1;
        Some(SocketSlot {
            hub: self.clone(),
            user,
        })
    }

    pub fn connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed)
    }

    /// Puts a connection in a room. A room new on this instance starts at
    /// `cursor` with `online` (both read before this call).
    pub fn enter(
        &self,
        group: Uuid,
        id: u64,
        connection: Connection,
        cursor: i64,
        online: Vec<Person>,
    ) {
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(group).or_insert_with(|| Room {
            cursor,
            online,
            connections: HashMap::new(),
        });
        room.connections.insert(id, connection);
    }

    /// Takes a connection out of a room; an empty room is forgotten.
    pub fn exit(&self, group: Uuid, id: u64) {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get_mut(&group) {
            room.connections.remove(&id);
            if room.connections.is_empty() {
                rooms.remove(&group);
            }
        }
    }

    /// Groups with a connection on this instance.
    pub fn groups(&self) -> Vec<Uuid> {
        lock(&self.rooms).keys().copied().collect()
    }

    pub fn connections(&self) -> usize {
        lock(&self.rooms)
            .values()
            .map(|r| r.connections.len())
            .sum()
    }

    /// Where delivery of a room stands, if the room is open here.
    pub fn cursor(&self, group: Uuid) -> Option<i64> {
        lock(&self.rooms).get(&group).map(|r| r.cursor)
    }

    /// Hands messages to every connection in a room and moves its cursor.
    pub fn deliver(&self, group: Uuid, frames: &[(i64, ByteString)]) {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&group) else {
            return;
        };
        for (id, text) in frames {
            if *id <= room.cursor {
                continue;
            }
            room.cursor = *id;
            send_all(
                room,
                None,
                &Outgoing {
                    group,
                    message_id: Some(*id),
                    text: text.clone(),
                },
            );
        }
        if room.connections.is_empty() {
            rooms.remove(&group);
        }
    }

    /// Sends one frame to everyone in the room (but `except`).
    pub fn broadcast(&self, group: Uuid, except: Option<Uuid>, text: ByteString) {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get_mut(&group) {
            send_all(
                room,
                except,
                &Outgoing {
                    group,
                    message_id: None,
                    text,
                },
            );
        }
    }

    /// Sends one frame to one person's connections in a room.
    pub fn send_to(&self, group: Uuid, user: Uuid, text: ByteString) {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get_mut(&group) {
            let out = Outgoing {
                group,
                message_id: None,
                text,
            };
            room.connections
                .retain(|_, c| c.user != user || offer(c, &out));
        }
    }

    /// Closes one person's connections to a room.
    pub fn close_for(&self, group: Uuid, user: Uuid, cause: Cause) {
        let mut rooms = lock(&self.rooms);
        if let Some(room) = rooms.get_mut(&group) {
            room.connections.retain(|_, c| {
                if c.user == user {
                    c.kill.fire(cause);
                    false
                } else {
                    true
                }
            });
        }
    }

    /// People with a connection to this room on this instance.
    pub fn local_users(&self, group: Uuid) -> Vec<Uuid> {
        let rooms = lock(&self.rooms);
        let mut users: Vec<Uuid> = rooms
            .get(&group)
            .map(|r| r.connections.values().map(|c| c.user).collect())
            .unwrap_or_default();
        users.sort();
        users.dedup();
        users
    }

    pub fn online(&self, group: Uuid) -> Vec<Person> {
        lock(&self.rooms)
            .get(&group)
            .map(|r| r.online.clone())
            .unwrap_or_default()
    }

    /// Records that someone came or went; true when that changes who is online.
    pub fn set_online(&self, group: Uuid, person: Person, online: bool) -> bool {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(&group) else {
            return false;
        };
        let at = room.online.iter().position(|p| p.id == person.id);
        match (at, online) {
            (None, true) => {
                room.online.push(person);
                true
            }
            (Some(i), false) => {
                room.online.remove(i);
                true
            }
            _ => false,
        }
    }

    /// Counts a post against the person's rate limit; Err with the wait when over it.
    pub fn allow_post(&self, user: Uuid, limit: usize, window: Duration) -> Result<(), Duration> {
        let now = Instant::now();
        let mut posts = lock(&self.posts);
        let recent = posts.entry(user).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            recent.pop_front();
        }
        if recent.len() >= limit {
            let oldest = recent.front().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.duration_since(oldest)));
        }
        recent.push_back(now);
        Ok(())
    }

    /// Forgets rate-limit history that no longer matters.
    pub fn prune_posts(&self, window: Duration) {
        let now = Instant::now();
        lock(&self.posts).retain(|_, recent| {
            recent
                .back()
                .is_some_and(|t| now.duration_since(*t) < window)
        });
    }
}

/// Queues a frame without waiting; false (and the connection is told to
/// close) when it cannot take more.
fn offer(connection: &Connection, out: &Outgoing) -> bool {
    match connection.tx.try_send(out.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            connection.kill.fire(Cause::TooSlow);
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

fn send_all(room: &mut Room, except: Option<Uuid>, out: &Outgoing) {
    room.connections
        .retain(|_, c| Some(c.user) == except || offer(c, out));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(user: Uuid, queue: usize) -> (Connection, mpsc::Receiver<Outgoing>) {
        let (tx, rx) = mpsc::channel(queue);
        (
            Connection {
                user,
                tx,
                kill: Arc::new(Kill::default()),
            },
            rx,
        )
    }

    #[test]
    fn a_slow_connection_is_dropped_and_the_room_goes_on() {
        let hub = Hub::new();
        let group = Uuid::new_v4();
        let (slow, _never_read) = connection(Uuid::new_v4(), 2);
        let (quick, mut quick_rx) = connection(Uuid::new_v4(), 64);
        let slow_kill = slow.kill.clone();
        hub.enter(group, 1, slow, 0, vec![]);
        hub.enter(group, 2, quick, 0, vec![]);
        let frames: Vec<(i64, ByteString)> = (1..=5)
            .map(|i| (i, ByteString::from(format!("m{i}"))))
            .collect();
        hub.deliver(group, &frames);
        assert_eq!(slow_kill.cause(), Some(Cause::TooSlow));
        assert_eq!(hub.connections(), 1, "the slow connection left the room");
        let mut got = Vec::new();
        while let Ok(out) = quick_rx.try_recv() {
            got.push(out.message_id);
        }
        assert_eq!(got, vec![Some(1), Some(2), Some(3), Some(4), Some(5)]);
    }

    #[test]
    fn delivery_skips_what_the_room_already_has() {
        let hub = Hub::new();
        let group = Uuid::new_v4();
        let (c, mut rx) = connection(Uuid::new_v4(), 16);
        hub.enter(group, 1, c, 3, vec![]);
        let frames: Vec<(i64, ByteString)> =
            (2..=5).map(|i| (i, ByteString::from_static("x"))).collect();
        hub.deliver(group, &frames);
        hub.deliver(group, &frames);
        let mut got = Vec::new();
        while let Ok(out) = rx.try_recv() {
            got.push(out.message_id);
        }
        assert_eq!(got, vec![Some(4), Some(5)]);
        assert_eq!(hub.cursor(group), Some(5));
    }

    #[test]
    fn the_rate_limit_allows_ten_then_waits() {
        let hub = Hub::new();
        let user = Uuid::new_v4();
        for _ in 0..10 {
            assert!(hub.allow_post(user, 10, Duration::from_secs(10)).is_ok());
        }
        let wait = hub
            .allow_post(user, 10, Duration::from_secs(10))
            .unwrap_err();
        assert!(wait > Duration::from_secs(9));
        assert!(
            hub.allow_post(Uuid::new_v4(), 10, Duration::from_secs(10))
                .is_ok()
        );
    }

    #[test]
    fn an_empty_room_is_forgotten() {
        let hub = Hub::new();
        let group = Uuid::new_v4();
        let (c, _rx) = connection(Uuid::new_v4(), 4);
        hub.enter(group, 9, c, 0, vec![]);
        assert_eq!(hub.groups(), vec![group]);
        hub.exit(group, 9);
        assert!(hub.groups().is_empty());
    }
}
