//! The subscription index: filters without a wildcard by the whole filter,
//! the others in a tree of topic levels with `+` and `#` nodes. Each filter's
//! place holds its plain subscriptions (one per session) and the shared
//! subscription groups (`$share/<group>/<filter>`) on it.

use std::{
    collections::HashMap as StdMap,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
};

use pigeon_codec::{topic::parse_shared, QoS, SubscriptionOptions};

use super::Session;

/// The maps of the tree: every publish hashes each level of its topic, and
/// SipHash was some 4% of a fan-in profile. foldhash's quality variant is
/// seeded per map, so keys chosen by clients cannot be aimed at collisions.
type HashMap<K, V> = StdMap<K, V, foldhash::quality::RandomState>;

/// Subscriptions indexed by filter, matched against topic names.
#[derive(Default)]
pub(crate) struct TopicTree {
    /// Filters with a `+` or `#` level, by level.
    root: Node,
    /// Filters without one (most of them), by the whole filter: a topic
    /// matches such a filter only by being equal to it, so a publish finds
    /// them in one lookup of its whole topic instead of one per level. The
    /// walk of a two-level topic was some 580 of a QoS 1 message's 4,600
    /// instructions in the benchmark's pairs scenario.
    exact: HashMap<Box<str>, Holders>,
    count: usize,
}

/// The subscriptions to one filter.
#[derive(Default)]
struct Holders {
    subs: HashMap<Arc<str>, Entry>,
    groups: HashMap<Box<str>, Group>,
}

impl Holders {
    fn is_empty(&self) -> bool {
        self.subs.is_empty() && self.groups.is_empty()
    }

    /// Removes `client_id` from the plain subscribers, or from `group`.
    fn remove(&mut self, group: Option<&str>, client_id: &str) -> bool {
        let Some(name) = group else {
            return self.subs.remove(client_id).is_some();
        };
        let Some(g) = self.groups.get_mut(name) else {
            return false;
        };
        let before = g.members.len();
        g.members.retain(|e| &*e.session.client_id != client_id);
        let removed = g.members.len() != before;
        if g.members.is_empty() {
            self.groups.remove(name);
        }
        removed
    }
}

#[derive(Default)]
struct Node {
    /// The plain levels below. The wildcard levels have fields of their own:
    /// a publish then hashes only its own levels, where looking up `+` and
    /// `#` by name too made three lookups per level (most of the walk in a
    /// profile of 100 publisher/subscriber pairs).
    children: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    /// The subscriptions to the filter that ends here.
    here: Holders,
}

/// Whether a filter (without its `$share/<group>/`) has a wildcard level.
fn has_wildcard(filter: &str) -> bool {
    filter.split('/').any(|level| level == "+" || level == "#")
}

impl Node {
    /// The child for a filter level.
    fn child(&self, level: &str) -> Option<&Node> {
        match level {
            "+" => self.plus.as_deref(),
            "#" => self.hash.as_deref(),
            _ => self.children.get(level),
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node> {
        match level {
            "+" => self.plus.as_deref_mut(),
            "#" => self.hash.as_deref_mut(),
            _ => self.children.get_mut(level),
        }
    }

    /// The child for a filter level, made if there is none.
    fn child_or_new(&mut self, level: &str) -> &mut Node {
        match level {
            "+" => self.plus.get_or_insert_with(Default::default),
            "#" => self.hash.get_or_insert_with(Default::default),
            _ => self.children.entry(level.into()).or_default(),
        }
    }

    fn remove_child(&mut self, level: &str) {
        match level {
            "+" => self.plus = None,
            "#" => self.hash = None,
            _ => drop(self.children.remove(level)),
        }
    }

    /// Nothing is subscribed here or below (the node can go).
    fn is_unused(&self) -> bool {
        self.here.is_empty()
            && self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
    }
}

/// The levels of a topic name. `str::split('/')`'s searcher cost more than
/// the search itself on levels this short; a `/` byte is always a character
/// boundary in UTF-8, so the slices are whole characters.
#[derive(Clone)]
struct Levels<'t> {
    rest: Option<&'t str>,
}

impl<'t> Levels<'t> {
    fn new(topic: &'t str) -> Self {
        Self { rest: Some(topic) }
    }
}

impl<'t> Iterator for Levels<'t> {
    type Item = &'t str;

    fn next(&mut self) -> Option<&'t str> {
        let rest = self.rest?;
        match rest.bytes().position(|b| b == b'/') {
            Some(at) => {
                self.rest = rest.get(at + 1..);
                rest.get(..at)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// One session's subscription at a node.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The subscriber.
    pub session: Arc<Session>,
    /// Granted QoS and the MQTT 5.0 options.
    pub options: SubscriptionOptions,
    /// The MQTT 5.0 subscription identifier, if the client gave one.
    pub identifier: Option<u32>,
}

/// The members of one shared subscription, served round-robin.
struct Group {
    /// The full filter, `$share/<group>/<filter>`.
    key: Arc<str>,
    members: Vec<Entry>,
    next: AtomicUsize,
}

/// Where one copy of a matched message goes, borrowed from the tree: the
/// caller offers the copies while it holds the tree's read lock. An owned
/// `Arc<Session>` per copy cost two atomic read-modify-writes on the line the
/// subscriber's core keeps taking back for its session lock (the decrement
/// alone was most of `offer_all` in a fan-out profile).
pub(crate) struct Target<'a> {
    /// The receiving session.
    pub session: &'a Arc<Session>,
    /// The highest granted QoS among the session's matching subscriptions.
    pub qos: QoS,
    /// Whether the retain flag is kept as published.
    pub retain_as_published: bool,
    /// Identifiers of every matching subscription this copy stands for.
    pub identifiers: Vec<u32>,
    /// `$share/<group>/<filter>` when this is a shared subscription's copy.
    pub share: Option<&'a Arc<str>>,
}

impl<'a> Target<'a> {
    fn from_entry(entry: &'a Entry, share: Option<&'a Arc<str>>) -> Self {
        Self {
            session: &entry.session,
            qos: entry.options.qos,
            retain_as_published: entry.options.retain_as_published,
            identifiers: entry.identifier.into_iter().collect(),
            share,
        }
    }
}

impl Group {
    /// The next member round-robin, preferring those `ready` says can take a
    /// message now, never `exclude`.
    fn pick(&self, exclude: Option<&str>, ready: &impl Fn(&Session) -> bool) -> Option<&Entry> {
        let n = self.members.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Relaxed);
        let mut fallback = None;
        for i in 0..n {
            let Some(entry) = self.members.get((start + i) % n) else {
                continue;
            };
            if exclude == Some(&*entry.session.client_id) {
                continue;
            }
            if ready(&entry.session) {
                return Some(entry);
            }
            fallback.get_or_insert(entry);
        }
        fallback
    }
}

impl TopicTree {
    /// Adds or replaces `session`'s subscription to `filter` (a plain filter or
    /// `$share/<group>/<filter>`). True when it is new.
    pub(crate) fn insert(&mut self, filter: &str, entry: Entry) -> bool {
        let (group, inner) = match parse_shared(filter) {
            Some((group, inner)) => (Some(group), inner),
            None => (None, filter),
        };
        let holders = self.holders_or_new(inner);
        let new = match group {
            None => {
                let id = entry.session.client_id.clone();
                holders.subs.insert(id, entry).is_none()
            }
            Some(group) => {
                let group = holders.groups.entry(group.into()).or_insert_with(|| Group {
                    key: Arc::from(filter),
                    members: Vec::new(),
                    next: AtomicUsize::new(0),
                });
                let same = |e: &Entry| e.session.client_id == entry.session.client_id;
                match group.members.iter_mut().find(|e| same(e)) {
                    Some(existing) => {
                        *existing = entry;
                        false
                    }
                    None => {
                        group.members.push(entry);
                        true
                    }
                }
            }
        };
        if new {
            self.count += 1;
        }
        new
    }

    /// Removes `client_id`'s subscription to `filter`. True when it existed.
    pub(crate) fn remove(&mut self, filter: &str, client_id: &str) -> bool {
        let (group, inner) = match parse_shared(filter) {
            Some((group, inner)) => (Some(group), inner),
            None => (None, filter),
        };
        let removed = if has_wildcard(inner) {
            let levels: Vec<&str> = inner.split('/').collect();
            remove_at(&mut self.root, &levels, group, client_id)
        } else {
            let Some(holders) = self.exact.get_mut(inner) else {
                return false;
            };
            let removed = holders.remove(group, client_id);
            if holders.is_empty() {
                self.exact.remove(inner);
            }
            removed
        };
        if removed {
            self.count -= 1;
        }
        removed
    }

    /// How many sessions hold `filter` itself: plain subscribers of the filter,
    /// or the members of the `$share/<group>/<filter>` group. The engine tells
    /// the emitter when this goes from 0 to 1 and back (interest-based routing
    /// in a cluster: other nodes send this node only what it has interest in).
    pub(crate) fn holders(&self, filter: &str) -> usize {
        let (group, inner) = match parse_shared(filter) {
            Some((group, inner)) => (Some(group), inner),
            None => (None, filter),
        };
        let Some(holders) = self.of(inner) else {
            return 0;
        };
        match group {
            None => holders.subs.len(),
            Some(group) => holders.groups.get(group).map_or(0, |g| g.members.len()),
        }
    }

    /// The subscriptions to `filter` (without its `$share/<group>/`), if any.
    fn of(&self, filter: &str) -> Option<&Holders> {
        if !has_wildcard(filter) {
            return self.exact.get(filter);
        }
        let mut node = &self.root;
        for level in filter.split('/') {
            node = node.child(level)?;
        }
        Some(&node.here)
    }

    /// The subscriptions to `filter` (without its `$share/<group>/`), made
    /// empty if there were none.
    fn holders_or_new(&mut self, filter: &str) -> &mut Holders {
        if !has_wildcard(filter) {
            return self.exact.entry(filter.into()).or_default();
        }
        let mut node = &mut self.root;
        for level in filter.split('/') {
            node = node.child_or_new(level);
        }
        &mut node.here
    }

    /// Number of subscriptions.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// True when there is no subscription (the tests' check that removal cleans up).
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends where a message on `topic` goes: one copy per session for its
    /// plain subscriptions (highest QoS, every identifier; `no_local` ones skip
    /// the `origin` client), plus one copy per matching shared group, to a
    /// member picked round-robin among those `ready` accepts.
    #[cfg(test)]
    pub(crate) fn matches<'a>(
        &'a self,
        topic: &str,
        origin: Option<&str>,
        ready: impl Fn(&Session) -> bool,
        out: &mut Vec<Target<'a>>,
    ) {
        self.matches_serving(topic, origin, ready, |_| true, out)
    }

    /// As [`TopicTree::matches`], serving only the shared groups whose
    /// `$share/<group>/<filter>` key `serve` accepts. In a cluster, the
    /// publishing node picks the one node that serves each shared group for a
    /// message; every other node skips that group (and still serves its plain
    /// subscriptions).
    pub(crate) fn matches_serving<'a>(
        &'a self,
        topic: &str,
        origin: Option<&str>,
        ready: impl Fn(&Session) -> bool,
        serve: impl Fn(&str) -> bool,
        out: &mut Vec<Target<'a>>,
    ) {
        let plain_start = out.len();
        let mut found = Found {
            out,
            origin,
            groups: Vec::new(),
            plain_nodes: 0,
        };
        if let Some(holders) = self.exact.get(topic) {
            found.add(holders);
        }
        if !self.root.is_unused() {
            walk(
                &self.root,
                Levels::new(topic),
                topic.starts_with('$'),
                &mut found,
            );
        }
        let Found {
            out,
            groups,
            plain_nodes,
            ..
        } = found;
        if plain_nodes > 1 && out.len() - plain_start > 1 {
            merge_per_session(out, plain_start);
        }
        for group in groups {
            if !serve(&group.key) {
                continue;
            }
            if let Some(entry) = group.pick(None, &ready) {
                out.push(Target::from_entry(entry, Some(&group.key)));
            }
        }
    }

    /// Another member of the shared subscription `key` than `exclude`, for a
    /// message `exclude` could not take.
    pub(crate) fn pick_shared(
        &self,
        key: &str,
        exclude: &str,
        ready: impl Fn(&Session) -> bool,
    ) -> Option<Target<'_>> {
        let (group, inner) = parse_shared(key)?;
        let group = self.of(inner)?.groups.get(group)?;
        let entry = group.pick(Some(exclude), &ready)?;
        Some(Target::from_entry(entry, Some(&group.key)))
    }
}

/// What a walk finds: plain subscriptions go straight to the caller's
/// targets (no list of entries of its own: one allocation less per publish),
/// shared groups wait for the walk's end (most topics have none, and an empty
/// `Vec` allocates nothing).
struct Found<'a, 'o> {
    out: &'o mut Vec<Target<'a>>,
    /// The publisher, whom `no_local` subscriptions skip.
    origin: Option<&'o str>,
    groups: Vec<&'a Group>,
    /// Nodes the plain entries came from: a session appears at most once per
    /// node, so with one node there is nothing to merge.
    plain_nodes: usize,
}

impl<'a> Found<'a, '_> {
    fn add(&mut self, holders: &'a Holders) {
        if !holders.subs.is_empty() {
            self.plain_nodes += 1;
            // One allocation for a fan-out, not one per doubling.
            self.out.reserve(holders.subs.len());
            for entry in holders.subs.values() {
                if entry.options.no_local && self.origin == Some(&*entry.session.client_id) {
                    continue;
                }
                self.out.push(Target::from_entry(entry, None));
            }
        }
        self.groups.extend(holders.groups.values());
    }
}

fn remove_at(node: &mut Node, levels: &[&str], group: Option<&str>, client_id: &str) -> bool {
    let Some((first, rest)) = levels.split_first() else {
        return node.here.remove(group, client_id);
    };
    let Some(child) = node.child_mut(first) else {
        return false;
    };
    let removed = remove_at(child, rest, group, client_id);
    if child.is_unused() {
        node.remove_child(first);
    }
    removed
}

/// `levels` is the rest of the topic; `dollar_first` is true while at the
/// root of a `$` topic, where wildcards must not match.
fn walk<'a>(node: &'a Node, mut levels: Levels<'_>, dollar_first: bool, out: &mut Found<'a, '_>) {
    let Some(level) = levels.next() else {
        out.add(&node.here);
        // "a/#" also matches "a".
        if let Some(hash) = &node.hash {
            out.add(&hash.here);
        }
        return;
    };
    if let Some(child) = node.children.get(level) {
        walk(child, levels.clone(), false, out);
    }
    if !dollar_first {
        if let Some(plus) = &node.plus {
            walk(plus, levels, false, out);
        }
        if let Some(hash) = &node.hash {
            out.add(&hash.here);
        }
    }
}

/// Merges the plain targets from `start` on into one per session (MQTT 5.0
/// 3.3.4: one copy, the highest QoS, every subscription identifier).
fn merge_per_session(out: &mut Vec<Target<'_>>, start: usize) {
    let Some(tail) = out.get_mut(start..) else {
        return;
    };
    tail.sort_by_key(|t| Arc::as_ptr(t.session) as usize);
    // In place: no second vector per publish.
    let mut kept = start;
    for i in start..out.len() {
        let same = kept > start && Arc::ptr_eq(out[kept - 1].session, out[i].session);
        if same {
            let target = std::mem::take(&mut out[i].identifiers);
            let (qos, retain) = (out[i].qos, out[i].retain_as_published);
            let into = &mut out[kept - 1];
            into.qos = into.qos.max(qos);
            into.retain_as_published |= retain;
            into.identifiers.extend(target);
        } else {
            out.swap(kept, i);
            kept += 1;
        }
    }
    out.truncate(kept);
    for target in out.iter_mut().skip(start) {
        target.identifiers.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use pigeon_codec::QoS;

    use super::*;

    #[test]
    fn levels_split_as_str_split_does() {
        for topic in ["", "/", "a", "a/", "/a", "a//b", "a/b/c", "é/ü/€", "$SYS/x"] {
            let ours: Vec<&str> = Levels::new(topic).collect();
            let std: Vec<&str> = topic.split('/').collect();
            assert_eq!(ours, std, "{topic:?}");
        }
    }

    fn session(id: &str) -> Arc<Session> {
        Arc::new(Session::new(
            Arc::from(id),
            super::super::budget::tests::policy(10),
        ))
    }

    fn entry(session: &Arc<Session>, qos: QoS, identifier: Option<u32>) -> Entry {
        Entry {
            session: session.clone(),
            options: SubscriptionOptions {
                qos,
                ..Default::default()
            },
            identifier,
        }
    }

    fn matched(tree: &TopicTree, topic: &str) -> Vec<(String, QoS, Vec<u32>, bool)> {
        let mut out = Vec::new();
        tree.matches(topic, None, |_| true, &mut out);
        let mut v: Vec<_> = out
            .iter()
            .map(|t| {
                (
                    t.session.client_id.to_string(),
                    t.qos,
                    t.identifiers.clone(),
                    t.share.is_some(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_dollar_rule_and_overlap() {
        let (a, b) = (session("a"), session("b"));
        let mut tree = TopicTree::default();
        assert!(tree.insert("s/+/p", entry(&a, QoS::AtMostOnce, Some(1))));
        assert!(tree.insert("s/#", entry(&a, QoS::ExactlyOnce, Some(2))));
        assert!(tree.insert("#", entry(&b, QoS::AtLeastOnce, None)));
        assert!(tree.insert("$SYS/#", entry(&b, QoS::AtMostOnce, None)));
        assert!(
            !tree.insert("#", entry(&b, QoS::AtMostOnce, None)),
            "replaced"
        );
        assert_eq!(tree.len(), 4);
        assert_eq!(
            matched(&tree, "s/x/p"),
            vec![
                ("a".into(), QoS::ExactlyOnce, vec![1, 2], false),
                ("b".into(), QoS::AtMostOnce, vec![], false)
            ]
        );
        assert_eq!(
            matched(&tree, "s"),
            vec![
                ("a".into(), QoS::ExactlyOnce, vec![2], false),
                ("b".into(), QoS::AtMostOnce, vec![], false)
            ]
        );
        assert_eq!(
            matched(&tree, "$SYS/x"),
            vec![("b".into(), QoS::AtMostOnce, vec![], false)]
        );
        assert!(tree.remove("s/#", "a"));
        assert!(!tree.remove("s/#", "a"));
        assert!(tree.remove("s/+/p", "a") && tree.remove("#", "b") && tree.remove("$SYS/#", "b"));
        assert!(
            tree.is_empty() && tree.root.is_unused() && tree.exact.is_empty(),
            "empty nodes pruned"
        );
    }

    /// Several sessions, each matching through several nodes, interleaved:
    /// one target per session, with its highest QoS and every identifier.
    #[test]
    fn overlapping_filters_of_many_sessions_merge_to_one_target_each() {
        let sessions: Vec<_> = ["a", "b", "c", "d"].iter().map(|id| session(id)).collect();
        let mut tree = TopicTree::default();
        for (i, s) in sessions.iter().enumerate() {
            let id = |k: u32| Some(10 * (i as u32 + 1) + k);
            tree.insert("x/y/z", entry(s, QoS::AtMostOnce, id(1)));
            if i % 2 == 0 {
                tree.insert("x/+/z", entry(s, QoS::ExactlyOnce, id(2)));
            }
            tree.insert("x/#", entry(s, QoS::AtLeastOnce, id(3)));
        }
        tree.insert("x/y/+", entry(&sessions[3], QoS::AtMostOnce, None));
        assert_eq!(
            matched(&tree, "x/y/z"),
            vec![
                ("a".into(), QoS::ExactlyOnce, vec![11, 12, 13], false),
                ("b".into(), QoS::AtLeastOnce, vec![21, 23], false),
                ("c".into(), QoS::ExactlyOnce, vec![31, 32, 33], false),
                ("d".into(), QoS::AtLeastOnce, vec![41, 43], false),
            ]
        );
    }

    #[test]
    fn shared_groups_round_robin_beside_plain_subscriptions() {
        let (a, b, c) = (session("a"), session("b"), session("c"));
        let mut tree = TopicTree::default();
        assert!(tree.insert("$share/g/t/+", entry(&a, QoS::AtLeastOnce, Some(7))));
        assert!(tree.insert("$share/g/t/+", entry(&b, QoS::AtLeastOnce, None)));
        assert!(tree.insert("$share/h/t/#", entry(&c, QoS::AtMostOnce, None)));
        assert!(tree.insert("t/x", entry(&a, QoS::AtMostOnce, None)));
        assert_eq!(tree.len(), 4);
        let mut firsts = Vec::new();
        for _ in 0..4 {
            let m = matched(&tree, "t/x");
            // a's plain copy, one member of g, c for h.
            assert_eq!(m.len(), 4 - 1, "{m:?}");
            let g: Vec<_> = m
                .iter()
                .filter(|(id, _, _, shared)| *shared && id != "c")
                .collect();
            assert_eq!(g.len(), 1);
            firsts.push(g[0].0.clone());
        }
        assert_eq!(firsts, ["a", "b", "a", "b"]);
        let other = tree.pick_shared("$share/g/t/+", "a", |_| true);
        assert_eq!(
            other.map(|t| t.session.client_id.to_string()),
            Some("b".into())
        );
        assert!(tree.pick_shared("$share/h/t/#", "c", |_| true).is_none());
        assert!(tree.remove("$share/g/t/+", "a"));
        assert!(!tree.remove("$share/g/t/+", "a"));
        assert!(tree.remove("$share/g/t/+", "b") && tree.remove("$share/h/t/#", "c"));
        assert!(tree.remove("t/x", "a"));
        assert!(tree.is_empty() && tree.root.is_unused() && tree.exact.is_empty());
    }

    /// Filters without a wildcard are found by the whole topic, and still
    /// merge with the wildcard ones of the same session.
    #[test]
    fn exact_filters_match_only_their_own_topic() {
        let (a, b) = (session("a"), session("b"));
        let mut tree = TopicTree::default();
        let filters = [
            ("a/b", &a, QoS::AtMostOnce, Some(1)),
            ("a/+", &a, QoS::AtLeastOnce, Some(2)),
            ("a/b", &b, QoS::AtLeastOnce, None),
            ("a//b", &b, QoS::AtMostOnce, None),
            ("$SYS/x", &b, QoS::AtMostOnce, None),
            ("$share/g/a/b", &b, QoS::AtLeastOnce, None),
        ];
        for (filter, session, qos, id) in filters {
            assert!(tree.insert(filter, entry(session, qos, id)), "{filter}");
        }
        let again = entry(&b, QoS::AtMostOnce, None);
        assert!(!tree.insert("a/b", again), "replaced");
        assert_eq!(tree.len(), 6);
        assert_eq!(
            matched(&tree, "a/b"),
            vec![
                ("a".into(), QoS::AtLeastOnce, vec![1, 2], false),
                ("b".into(), QoS::AtMostOnce, vec![], false),
                ("b".into(), QoS::AtLeastOnce, vec![], true),
            ]
        );
        assert_eq!(
            matched(&tree, "a/c"),
            vec![("a".into(), QoS::AtLeastOnce, vec![2], false)]
        );
        for topic in ["a", "a/b/c", "a/", "/a/b", "A/b"] {
            assert!(!matched(&tree, topic).iter().any(|m| m.0 == "b"), "{topic}");
        }
        assert_eq!(
            matched(&tree, "a//b"),
            vec![("b".into(), QoS::AtMostOnce, vec![], false)]
        );
        assert_eq!(
            matched(&tree, "$SYS/x"),
            vec![("b".into(), QoS::AtMostOnce, vec![], false)]
        );
        assert_eq!(tree.holders("a/b"), 2);
        assert_eq!(tree.holders("$share/g/a/b"), 1);
        assert!(tree.pick_shared("$share/g/a/b", "a", |_| true).is_some());
        assert!(tree.remove("a/b", "a") && !tree.remove("a/b", "a"));
        assert_eq!(tree.holders("a/b"), 1);
        for (filter, id) in [("a/b", "b"), ("a/+", "a"), ("a//b", "b"), ("$SYS/x", "b")] {
            assert!(tree.remove(filter, id), "{filter}");
        }
        assert!(tree.remove("$share/g/a/b", "b"));
        assert!(tree.is_empty() && tree.root.is_unused() && tree.exact.is_empty());
    }

    #[test]
    fn holders_count_plain_subscribers_and_group_members_per_filter() {
        let (a, b) = (session("a"), session("b"));
        let mut tree = TopicTree::default();
        assert_eq!(tree.holders("t/+"), 0);
        tree.insert("t/+", entry(&a, QoS::AtMostOnce, None));
        tree.insert("t/+", entry(&b, QoS::AtMostOnce, None));
        tree.insert("$share/g/t/+", entry(&a, QoS::AtMostOnce, None));
        assert_eq!(tree.holders("t/+"), 2);
        assert_eq!(tree.holders("$share/g/t/+"), 1);
        assert_eq!(tree.holders("$share/h/t/+"), 0);
        assert_eq!(tree.holders("t"), 0);
        let mut out = Vec::new();
        tree.matches_serving("t/x", None, |_| true, |_| false, &mut out);
        assert_eq!(out.len(), 2, "the group is skipped, the plain ones served");
        tree.remove("t/+", "a");
        assert_eq!(tree.holders("t/+"), 1);
    }

    #[test]
    fn shared_pick_skips_members_that_cannot_take_a_message() {
        let (a, b) = (session("a"), session("b"));
        let mut tree = TopicTree::default();
        tree.insert("$share/g/t", entry(&a, QoS::AtLeastOnce, None));
        tree.insert("$share/g/t", entry(&b, QoS::AtLeastOnce, None));
        let picked = |ready: &dyn Fn(&Session) -> bool| {
            let mut out = Vec::new();
            tree.matches("t", None, ready, &mut out);
            out.iter()
                .map(|t| t.session.client_id.to_string())
                .collect::<Vec<_>>()
        };
        for _ in 0..3 {
            assert_eq!(picked(&|s: &Session| &*s.client_id != "a"), ["b"]);
        }
        // Nobody ready: round-robin among all the same (persistent members queue it).
        let mut seen: Vec<_> = (0..2).flat_map(|_| picked(&|_: &Session| false)).collect();
        seen.sort();
        assert_eq!(seen, ["a", "b"]);
    }
}
