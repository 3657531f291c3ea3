//! Sessions of a node that is gone: a node killed (or stopped for good)
//! leaves its offline persistent sessions in Redis, where no node routes
//! messages to them. Every node looks, each [`ALIVE_REFRESH`](super), for
//! nodes whose alive key has expired; one of them (a lock per dead node)
//! takes their sessions over — the lease, the `node` field, the set — and
//! hands them to its engine, which restores them as at a restart (timers
//! re-armed, a due will published once).

use tokio::sync::mpsc;

use super::{cmd, eval, int, keys, members, read_sessions, replies, scripts, writer::Writer};
use crate::persistence::Adoption;

/// How long one node keeps the right to adopt a dead node's sessions.
const ADOPT_LOCK_MS: u64 = 30_000;
/// Sessions adopted per round trip.
const CHUNK: usize = 128;

fn text(v: Vec<u8>) -> String {
    String::from_utf8_lossy(&v).into_owned()
}

/// One round: adopts what dead nodes left (their sessions go to `adopted`).
pub(super) async fn round(writer: &Writer, me: &str, adopted: &mpsc::UnboundedSender<Adoption>) {
    let mut c = cmd("SMEMBERS");
    c.arg(keys::NODES);
    let Some(nodes) = replies(writer.ask(vec![c])).await else {
        return;
    };
    let nodes: Vec<String> = nodes
        .into_iter()
        .next()
        .map(members)
        .unwrap_or_default()
        .into_iter()
        .map(text)
        .filter(|n| n != me)
        .collect();
    for dead in nodes {
        let mut alive = cmd("EXISTS");
        alive.arg(keys::alive(&dead));
        let mut lock = cmd("SET");
        lock.arg(keys::adopting(&dead))
            .arg(me)
            .arg("NX")
            .arg("PX")
            .arg(ADOPT_LOCK_MS);
        // Only a node that finds it dead takes the lock.
        let Some(found) = replies(writer.ask(vec![alive])).await else {
            return;
        };
        if found.first().map(int) != Some(0) {
            continue;
        }
        let Some(locked) = replies(writer.ask(vec![lock])).await else {
            return;
        };
        if !matches!(locked.first(), Some(redis::Value::Okay)) {
            continue;
        }
        adopt(writer, me, &dead, adopted).await;
    }
}

async fn adopt(writer: &Writer, me: &str, dead: &str, adopted: &mpsc::UnboundedSender<Adoption>) {
    let mut c = cmd("SMEMBERS");
    c.arg(keys::node_sessions(dead));
    let Some(left) = replies(writer.ask(vec![c])).await else {
        return;
    };
    let clients: Vec<String> = left
        .into_iter()
        .next()
        .map(members)
        .unwrap_or_default()
        .into_iter()
        .map(text)
        .collect();
    let (dead_set, my_set) = (keys::node_sessions(dead), keys::node_sessions(me));
    let mut sessions = Vec::new();
    for chunk in clients.chunks(CHUNK) {
        let cmds = chunk
            .iter()
            .map(|client| {
                let (owner, node, state) = (
                    keys::owner(client),
                    keys::session(client, "node"),
                    keys::session(client, "state"),
                );
                let mut c = eval(scripts::ADOPT, &[&owner, &node, &dead_set, &my_set, &state]);
                c.arg(dead).arg(me).arg(client);
                c
            })
            .collect();
        let Some(results) = replies(writer.ask(cmds)).await else {
            return;
        };
        let taken: Vec<String> = chunk
            .iter()
            .zip(results.iter())
            .filter(|(_, r)| int(r) == 1)
            .map(|(c, _)| c.clone())
            .collect();
        for (_, stored, _) in read_sessions(writer, &taken).await {
            sessions.extend(stored);
        }
    }
    // Nothing left of that node: it is forgotten (it registers again if it
    // comes back).
    let mut forget = cmd("SREM");
    forget.arg(keys::NODES).arg(dead);
    let mut unlock = cmd("DEL");
    unlock.arg(keys::adopting(dead));
    writer.send(vec![forget, unlock]);
    if !sessions.is_empty() {
        tracing::info!(
            node = dead,
            sessions = sessions.len(),
            "adopted the sessions of a node that is gone"
        );
    }
    // Sent even with no session: the engine has the node's routes retired.
    let _ = adopted.send(Adoption {
        from: dead.to_owned(),
        sessions,
    });
}
