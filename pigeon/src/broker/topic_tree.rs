//! The subscription index: a tree of topic levels with `+` and `#` nodes.

use std::{collections::HashMap, sync::Arc};

use pigeon_codec::SubscriptionOptions;

use super::Session;

/// Subscriptions indexed by filter level, matched against topic names.
#[derive(Default)]
pub struct TopicTree {
    root: Node,
    count: usize,
}

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    subs: HashMap<Arc<str>, Entry>,
}

/// One session's subscription at a node.
#[derive(Clone)]
pub struct Entry {
    pub session: Arc<Session>,
    pub options: SubscriptionOptions,
}

impl TopicTree {
    /// Adds or replaces `session`'s subscription to `filter`. True when it is new.
    pub fn insert(
        &mut self,
        filter: &str,
        session: Arc<Session>,
        options: SubscriptionOptions,
    ) -> bool {
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let id = session.client_id.clone();
        let new = node.subs.insert(id, Entry { session, options }).is_none();
        if new {
            self.count += 1;
        }
        new
    }

    /// Removes `client_id`'s subscription to `filter`. True when it existed.
    pub fn remove(&mut self, filter: &str, client_id: &str) -> bool {
        let levels: Vec<&str> = filter.split('/').collect();
        let removed = remove_at(&mut self.root, &levels, client_id);
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there is no subscription.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends every subscription matching `topic`, one per session (the
    /// highest QoS wins when a session has overlapping filters).
    pub fn matches(&self, topic: &str, out: &mut Vec<Entry>) {
        let levels: Vec<&str> = topic.split('/').collect();
        let dollar = topic.starts_with('$');
        walk(&self.root, &levels, 0, dollar, out);
        if out.len() > 1 {
            dedupe(out);
        }
    }
}

fn remove_at(node: &mut Node, levels: &[&str], client_id: &str) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.subs.remove(client_id).is_some();
    };
    let Some(child) = node.children.get_mut(*first) else {
        return false;
    };
    let removed = remove_at(child, rest, client_id);
    if child.subs.is_empty() && child.children.is_empty() {
        node.children.remove(*first);
    }
    removed
}

fn walk(node: &Node, levels: &[&str], depth: usize, dollar: bool, out: &mut Vec<Entry>) {
    // Wildcards at the first level never match `$` topics.
    let wild = !(depth == 0 && dollar);
    let Some(level) = levels.get(depth) else {
        out.extend(node.subs.values().cloned());
        // "a/#" also matches "a".
        if let Some(hash) = node.children.get("#") {
            out.extend(hash.subs.values().cloned());
        }
        return;
    };
    if let Some(child) = node.children.get(*level) {
        walk(child, levels, depth + 1, dollar, out);
    }
    if wild {
        if let Some(plus) = node.children.get("+") {
            walk(plus, levels, depth + 1, dollar, out);
        }
        if let Some(hash) = node.children.get("#") {
            out.extend(hash.subs.values().cloned());
        }
    }
}

fn dedupe(out: &mut Vec<Entry>) {
    out.sort_by_key(|e| Arc::as_ptr(&e.session) as usize);
    out.dedup_by(|later, kept| {
        let same = Arc::ptr_eq(&later.session, &kept.session);
        if same && later.options.qos > kept.options.qos {
            kept.options = later.options;
        }
        same
    });
}
