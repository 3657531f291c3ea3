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
        walk(&self.root, topic.split('/'), topic.starts_with('$'), out);
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

/// `levels` is the rest of the topic; `dollar_first` is true while at the
/// root of a `$` topic, where wildcards must not match.
fn walk(
    node: &Node,
    mut levels: std::str::Split<'_, char>,
    dollar_first: bool,
    out: &mut Vec<Entry>,
) {
    let Some(level) = levels.next() else {
        out.extend(node.subs.values().cloned());
        // "a/#" also matches "a".
        if let Some(hash) = node.children.get("#") {
            out.extend(hash.subs.values().cloned());
        }
        return;
    };
    if let Some(child) = node.children.get(level) {
        walk(child, levels.clone(), false, out);
    }
    if !dollar_first {
        if let Some(plus) = node.children.get("+") {
            walk(plus, levels, false, out);
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

#[cfg(test)]
mod tests {
    use pigeon_codec::QoS;

    use super::*;

    fn session(id: &str) -> Arc<Session> {
        Arc::new(Session::new(Arc::from(id)))
    }

    fn opts(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..Default::default()
        }
    }

    fn matched(tree: &TopicTree, topic: &str) -> Vec<(String, QoS)> {
        let mut out = Vec::new();
        tree.matches(topic, &mut out);
        let mut v: Vec<_> = out
            .iter()
            .map(|e| (e.session.client_id.to_string(), e.options.qos))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn wildcards_dollar_rule_and_overlap() {
        let (a, b) = (session("a"), session("b"));
        let mut tree = TopicTree::default();
        assert!(tree.insert("s/+/p", a.clone(), opts(QoS::AtMostOnce)));
        assert!(tree.insert("s/#", a.clone(), opts(QoS::ExactlyOnce)));
        assert!(tree.insert("#", b.clone(), opts(QoS::AtLeastOnce)));
        assert!(tree.insert("$SYS/#", b.clone(), opts(QoS::AtMostOnce)));
        assert!(
            !tree.insert("#", b.clone(), opts(QoS::AtMostOnce)),
            "replaced"
        );
        assert_eq!(tree.len(), 4);
        assert_eq!(
            matched(&tree, "s/x/p"),
            vec![
                ("a".into(), QoS::ExactlyOnce),
                ("b".into(), QoS::AtMostOnce)
            ]
        );
        assert_eq!(
            matched(&tree, "s"),
            vec![
                ("a".into(), QoS::ExactlyOnce),
                ("b".into(), QoS::AtMostOnce)
            ]
        );
        assert_eq!(
            matched(&tree, "$SYS/x"),
            vec![("b".into(), QoS::AtMostOnce)]
        );
        assert_eq!(matched(&tree, "t//"), vec![("b".into(), QoS::AtMostOnce)]);
        assert!(tree.remove("s/#", "a"));
        assert!(!tree.remove("s/#", "a"));
        assert_eq!(
            matched(&tree, "s/x/p"),
            vec![("a".into(), QoS::AtMostOnce), ("b".into(), QoS::AtMostOnce)]
        );
        assert!(tree.remove("s/+/p", "a") && tree.remove("#", "b") && tree.remove("$SYS/#", "b"));
        assert!(
            tree.is_empty() && tree.root.children.is_empty(),
            "empty nodes pruned"
        );
    }
}
