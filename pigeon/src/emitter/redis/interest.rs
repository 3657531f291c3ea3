//! The interest index: which node has subscribers for which filter, this node
//! included, as a tree of topic levels (the engine's `TopicTree` idea, with
//! node ids where it has sessions). A publish is matched against it to find
//! the nodes that need the message, and which node serves each matching shared
//! group (round robin among the nodes with members).
//!
//! This node's own interest is also kept apart ([`Own`]): it is the truth the
//! node writes to Redis (`pigeon:node:{id}:filters`), whole after a reconnect
//! and as changes otherwise.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
};

use pigeon_codec::topic::parse_shared;

/// Filters of every known node, matchable by topic.
#[derive(Default)]
pub(super) struct Index {
    root: Level,
    /// node -> its filters (what to remove when a node's set is replaced).
    by_node: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

#[derive(Default)]
struct Level {
    children: HashMap<Box<str>, Level>,
    /// Nodes with a plain subscription to the filter ending here.
    plain: BTreeSet<Arc<str>>,
    /// `$share/<group>/<filter>` -> nodes with members of that group.
    shared: HashMap<Arc<str>, Shared>,
}

#[derive(Default)]
struct Shared {
    nodes: BTreeSet<Arc<str>>,
    next: AtomicUsize,
}

/// Where one message goes, besides this node's plain subscribers.
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// Other nodes, each once, with the shared groups it is to serve.
    pub remote: BTreeMap<Arc<str>, Vec<Arc<str>>>,
    /// The shared groups this node serves.
    pub local_shares: Vec<Arc<str>>,
    /// True when some shared group matched anywhere (local delivery then
    /// serves `local_shares` only).
    pub shared: bool,
}

impl Index {
    /// Records that `node` has interest in `filter`.
    pub(super) fn add(&mut self, node: &Arc<str>, filter: &str) {
        let filters = self.by_node.entry(node.clone()).or_default();
        if filters.contains(filter) {
            return;
        }
        let filter: Arc<str> = Arc::from(filter);
        filters.insert(filter.clone());
        let (key, inner) = split(&filter);
        let mut level = &mut self.root;
        for part in inner.split('/') {
            level = level.children.entry(part.into()).or_default();
        }
        match key {
            None => {
                level.plain.insert(node.clone());
            }
            Some(()) => {
                level
                    .shared
                    .entry(filter.clone())
                    .or_default()
                    .nodes
                    .insert(node.clone());
            }
        }
    }

    /// Records that `node` has no more interest in `filter`.
    pub(super) fn remove(&mut self, node: &str, filter: &str) {
        let Some(filters) = self.by_node.get_mut(node) else {
            return;
        };
        if !filters.remove(filter) {
            return;
        }
        if filters.is_empty() {
            self.by_node.remove(node);
        }
        let (key, inner) = split(filter);
        let levels: Vec<&str> = inner.split('/').collect();
        remove_at(&mut self.root, &levels, key.map(|()| filter), node);
    }

    /// Replaces everything known of `node` by `filters`.
    pub(super) fn replace(&mut self, node: &Arc<str>, filters: &HashSet<String>) {
        let old: Vec<Arc<str>> = self
            .by_node
            .get(node)
            .map(|f| f.iter().cloned().collect())
            .unwrap_or_default();
        for filter in old {
            if !filters.contains(&*filter) {
                self.remove(node, &filter);
            }
        }
        for filter in filters {
            self.add(node, filter);
        }
    }

    /// The nodes known, besides `me`.
    pub(super) fn nodes(&self, me: &str) -> Vec<Arc<str>> {
        self.by_node
            .keys()
            .filter(|n| &***n != me)
            .cloned()
            .collect()
    }

    /// Where a message on `topic` goes: every other node with a matching
    /// plain filter, and for each matching shared group one node among those
    /// with members, round robin (`me` included).
    pub(super) fn plan(&self, topic: &str, me: &str) -> Plan {
        let mut levels = Vec::new();
        walk(
            &self.root,
            topic.split('/'),
            topic.starts_with('$'),
            &mut levels,
        );
        let mut plan = Plan::default();
        for level in levels {
            for node in &level.plain {
                if &**node != me {
                    plan.remote.entry(node.clone()).or_default();
                }
            }
            for (key, shared) in &level.shared {
                let n = shared.nodes.len();
                if n == 0 {
                    continue;
                }
                plan.shared = true;
                let pick = shared.next.fetch_add(1, Relaxed) % n;
                let Some(node) = shared.nodes.iter().nth(pick) else {
                    continue;
                };
                if &**node == me {
                    plan.local_shares.push(key.clone());
                } else {
                    plan.remote
                        .entry(node.clone())
                        .or_default()
                        .push(key.clone());
                }
            }
        }
        plan
    }
}

/// `(Some(()), inner filter)` for `$share/<group>/<filter>`.
fn split(filter: &str) -> (Option<()>, &str) {
    match parse_shared(filter) {
        Some((_, inner)) => (Some(()), inner),
        None => (None, filter),
    }
}

fn remove_at(level: &mut Level, levels: &[&str], key: Option<&str>, node: &str) {
    let Some((first, rest)) = levels.split_first() else {
        match key {
            None => {
                level.plain.remove(node);
            }
            Some(key) => {
                if let Some(shared) = level.shared.get_mut(key) {
                    shared.nodes.remove(node);
                    if shared.nodes.is_empty() {
                        level.shared.remove(key);
                    }
                }
            }
        }
        return;
    };
    let Some(child) = level.children.get_mut(*first) else {
        return;
    };
    remove_at(child, rest, key, node);
    if child.plain.is_empty() && child.shared.is_empty() && child.children.is_empty() {
        level.children.remove(*first);
    }
}

/// The same walk as the engine's topic tree: `+` one level, `#` the rest
/// (and the parent), no wildcard at the first level of a `$` topic.
fn walk<'a>(
    level: &'a Level,
    mut parts: std::str::Split<'_, char>,
    dollar_first: bool,
    out: &mut Vec<&'a Level>,
) {
    let Some(part) = parts.next() else {
        out.push(level);
        if let Some(hash) = level.children.get("#") {
            out.push(hash);
        }
        return;
    };
    if let Some(child) = level.children.get(part) {
        walk(child, parts.clone(), false, out);
    }
    if !dollar_first {
        if let Some(plus) = level.children.get("+") {
            walk(plus, parts, false, out);
        }
        if let Some(hash) = level.children.get("#") {
            out.push(hash);
        }
    }
}

/// This node's own interest, and what Redis has not been told yet.
#[derive(Default)]
pub(super) struct Own {
    /// Every filter this node's topic tree holds.
    pub filters: HashSet<String>,
    /// Changes not written yet: filter -> now held (a change of a filter
    /// replaces its earlier one). None are kept while `resync` is due, which
    /// writes the whole set anyway: so it stays small while Redis is away.
    pub pending: HashMap<String, bool>,
    /// Write the whole set (after a (re)connect: Redis may have lost it).
    pub resync: bool,
}

impl Own {
    /// Records a change; false when it changes nothing.
    pub(super) fn change(&mut self, filter: &str, held: bool) -> bool {
        let changed = if held {
            self.filters.insert(filter.to_owned())
        } else {
            self.filters.remove(filter)
        };
        if changed && !self.resync {
            self.pending.insert(filter.to_owned(), held);
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str) -> Arc<str> {
        Arc::from(id)
    }

    fn remote(plan: &Plan) -> Vec<(&str, Vec<&str>)> {
        plan.remote
            .iter()
            .map(|(n, s)| (&**n, s.iter().map(|k| &**k).collect()))
            .collect()
    }

    #[test]
    fn each_node_once_and_only_nodes_with_a_matching_filter() {
        let (a, b, c) = (node("a"), node("b"), node("c"));
        let mut index = Index::default();
        index.add(&b, "s/+/t");
        index.add(&b, "s/#");
        index.add(&c, "other/#");
        index.add(&a, "s/x/t");
        let plan = index.plan("s/x/t", "a");
        assert_eq!(remote(&plan), vec![("b", vec![])]);
        assert!(!plan.shared);
        assert!(index.plan("nobody/here", "a").remote.is_empty());
        assert!(index.plan("s/x/t", "b").remote.contains_key("a"));
        // `$` topics are not matched by wildcards at the first level.
        index.add(&c, "#");
        assert!(!index.plan("$SYS/x", "a").remote.contains_key("c"));
        index.remove("b", "s/+/t");
        assert_eq!(
            remote(&index.plan("s/x/t", "a")),
            vec![("b", vec![]), ("c", vec![])]
        );
        index.remove("b", "s/#");
        index.remove("c", "#");
        assert!(index.plan("s/x/t", "a").remote.is_empty());
        index.remove("a", "s/x/t");
        index.remove("c", "other/#");
        assert!(index.root.children.is_empty() && index.by_node.is_empty());
    }

    #[test]
    fn a_shared_group_goes_to_one_node_round_robin() {
        let (a, b) = (node("a"), node("b"));
        let mut index = Index::default();
        index.add(&a, "$share/g/t");
        index.add(&b, "$share/g/t");
        index.add(&b, "t");
        let mut local = 0;
        for _ in 0..4 {
            let plan = index.plan("t", "a");
            assert!(plan.shared);
            // b always gets the message (its plain filter), the group once.
            let b_shares = plan.remote.get("b").map(Vec::len);
            assert!(b_shares.is_some());
            let served = plan.local_shares.len() + b_shares.unwrap_or(0);
            assert_eq!(served, 1, "{plan:?}");
            local += plan.local_shares.len();
        }
        assert_eq!(local, 2);
        let mut filters = HashSet::new();
        filters.insert("t".to_owned());
        index.replace(&b, &filters);
        for _ in 0..3 {
            assert_eq!(index.plan("t", "a").local_shares.len(), 1);
        }
        assert_eq!(index.nodes("a"), vec![b.clone()]);
    }

    #[test]
    fn own_changes_coalesce() {
        let mut own = Own::default();
        assert!(own.change("t", true));
        assert!(!own.change("t", true));
        assert!(own.change("t", false));
        assert_eq!(own.pending.len(), 1);
        assert_eq!(own.pending.get("t"), Some(&false));
        own.resync = true;
        assert!(own.change("u", true));
        assert_eq!(own.pending.len(), 1, "the whole set is due: no change kept");
        assert!(own.filters.contains("u"));
    }
}
