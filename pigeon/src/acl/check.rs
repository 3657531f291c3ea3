//! The decision itself, and the per-client form of an ACL.

use super::{
    matching::{filter_covers, topic_matches},
    unshared, Access, Rule,
};

/// `deny` entries first: a matching one refuses; then a matching entry that
/// grants `wanted` allows; nothing matching refuses.
pub(super) fn decide<'a>(
    rules: impl Iterator<Item = &'a Rule> + Clone,
    wanted: Access,
    matches: impl Fn(&str) -> bool,
) -> bool {
    if rules
        .clone()
        .any(|rule| rule.access == Access::Deny && matches(&rule.topic))
    {
        return false;
    }
    rules
        .into_iter()
        .any(|rule| rule.access.grants(wanted) && matches(&rule.topic))
}

/// The ACL rules of one client (from [`Acl::for_client`](super::Acl::for_client)),
/// with the same checks as [`Acl`](super::Acl) minus the client arguments.
#[derive(Debug, Clone, Default)]
pub struct ClientAcl {
    pub(super) rules: Vec<Rule>,
}

impl ClientAcl {
    /// May the client publish to `topic`?
    pub fn can_publish(&self, topic: &str) -> bool {
        decide(self.rules.iter(), Access::Write, |acl| {
            topic_matches(acl, topic)
        })
    }

    /// May the client subscribe to `filter`?
    pub fn can_subscribe(&self, filter: &str) -> bool {
        let filter = unshared(filter);
        decide(self.rules.iter(), Access::Read, |acl| {
            filter_covers(acl, filter)
        })
    }

    /// May the client receive a message on `topic`?
    pub fn can_read(&self, topic: &str) -> bool {
        decide(self.rules.iter(), Access::Read, |acl| {
            topic_matches(acl, topic)
        })
    }
}
