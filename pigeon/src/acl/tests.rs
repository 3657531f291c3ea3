use super::Acl;

/// A file in the style of Mosquitto's example `aclfile.example`.
const SITE_ACL: &str = "\
# This affects access control for clients with no username.
topic read $SYS/#
topic read public/#

# This only affects clients with username \"roger\".
user roger
topic foo/bar
topic read sensors/+/temperature
topic write commands/#
topic deny commands/reboot

user admin
topic readwrite #
topic readwrite $SYS/#

# This affects all clients.
pattern write $SYS/broker/connection/%c/state
pattern readwrite devices/%u/#
pattern read inbox/%c
pattern deny devices/%u/locked
";

fn site() -> Acl {
    Acl::parse(SITE_ACL, "site.acl").expect("valid acl")
}

#[test]
fn anonymous_entries_apply_only_to_clients_without_username() {
    let acl = site();
    assert!(acl.can_read("anon", None, "public/news"));
    assert!(!acl.can_publish("anon", None, "public/news"));
    assert!(acl.can_read("anon", None, "$SYS/broker/uptime"));
    // A client with a username uses its own section, not the anonymous one.
    assert!(!acl.can_read("c", Some("roger"), "public/news"));
    // A username with no section only gets patterns.
    assert!(!acl.can_read("c", Some("nobody"), "public/news"));
    assert!(acl.can_publish("c", Some("nobody"), "devices/nobody/x"));
}

#[test]
fn user_section_grants_by_access_type() {
    let acl = site();
    // `topic foo/bar` without access word is readwrite.
    assert!(acl.can_publish("c", Some("roger"), "foo/bar"));
    assert!(acl.can_read("c", Some("roger"), "foo/bar"));
    assert!(acl.can_read("c", Some("roger"), "sensors/kitchen/temperature"));
    assert!(!acl.can_publish("c", Some("roger"), "sensors/kitchen/temperature"));
    assert!(acl.can_publish("c", Some("roger"), "commands/light/on"));
    assert!(!acl.can_read("c", Some("roger"), "commands/light/on"));
    assert!(!acl.can_publish("c", Some("roger"), "foo/baz"));
}

#[test]
fn deny_takes_precedence_over_broader_grants() {
    let acl = site();
    assert!(!acl.can_publish("c", Some("roger"), "commands/reboot"));
    // A pattern deny beats the pattern grant devices/%u/#.
    assert!(acl.can_publish("c", Some("bob"), "devices/bob/lamp"));
    assert!(!acl.can_publish("c", Some("bob"), "devices/bob/locked"));
    assert!(!acl.can_read("c", Some("bob"), "devices/bob/locked"));
    // ... and a user's `readwrite #` too (stricter than Mosquitto's code order).
    assert!(acl.can_publish("c", Some("admin"), "anything/at/all"));
    assert!(!acl.can_publish("c", Some("admin"), "devices/admin/locked"));
}

#[test]
fn patterns_substitute_client_id_and_username() {
    let acl = site();
    assert!(acl.can_publish("sensor-7", None, "$SYS/broker/connection/sensor-7/state"));
    assert!(!acl.can_publish("sensor-7", None, "$SYS/broker/connection/sensor-8/state"));
    assert!(acl.can_read("sensor-7", None, "inbox/sensor-7"));
    assert!(!acl.can_read("sensor-7", None, "inbox/sensor-8"));
    // %u patterns are skipped for clients without a username.
    assert!(!acl.can_publish("sensor-7", None, "devices/sensor-7/x"));
    assert!(!acl.can_publish("c", Some("bob"), "devices/alice/lamp"));
}

#[test]
fn wildcard_ids_and_usernames_get_nothing_from_patterns() {
    let acl = site();
    assert!(!acl.can_read("#", None, "inbox/#"));
    assert!(!acl.can_publish("c", Some("+"), "devices/+/x"));
    assert!(!acl.can_publish("c", Some("a#"), "devices/a#/x"));
    // Their own section still applies.
    let acl = Acl::parse("user a+b\ntopic x\npattern %u/#\n", "t").unwrap();
    assert!(acl.can_publish("c", Some("a+b"), "x"));
    assert!(!acl.can_publish("c", Some("a+b"), "a+b/y"));
}

#[test]
fn dollar_topics_need_explicit_entries() {
    let acl = site();
    assert!(acl.can_publish("c", Some("admin"), "$SYS/anything"));
    let acl = Acl::parse("topic #\n", "t").unwrap();
    assert!(acl.can_publish("c", None, "a/b"));
    assert!(!acl.can_read("c", None, "$SYS/broker/uptime"));
    assert!(!acl.can_subscribe("c", None, "$SYS/#"));
}

#[test]
fn subscriptions_must_be_covered_by_a_read_entry() {
    let acl = site();
    assert!(acl.can_subscribe("c", None, "public/#"));
    assert!(acl.can_subscribe("c", None, "public/+/sport"));
    assert!(acl.can_subscribe("c", None, "public"));
    assert!(!acl.can_subscribe("c", None, "#"));
    assert!(!acl.can_subscribe("c", None, "+/news"));
    assert!(acl.can_subscribe("c", Some("roger"), "sensors/+/temperature"));
    assert!(acl.can_subscribe("c", Some("roger"), "sensors/attic/temperature"));
    assert!(!acl.can_subscribe("c", Some("roger"), "sensors/#"));
    // write-only entries do not allow subscribing.
    assert!(!acl.can_subscribe("c", Some("roger"), "commands/#"));
    assert!(acl.can_subscribe("c", Some("bob"), "devices/bob/#"));
    assert!(!acl.can_subscribe("c", Some("bob"), "devices/+/lamp"));
}

#[test]
fn shared_subscriptions_are_checked_by_their_filter() {
    let acl = site();
    assert!(acl.can_subscribe("c", None, "$share/workers/public/#"));
    assert!(!acl.can_subscribe("c", None, "$share/workers/private/#"));
    assert!(
        !acl.can_subscribe("c", None, "$share/public/#"),
        "group `public`, filter `#`"
    );
}

#[test]
fn deny_covering_a_subscription_refuses_it_partial_deny_filters_delivery() {
    let acl = Acl::parse(
        "user carol\ntopic read home/#\ntopic deny home/safe/#\n",
        "t",
    )
    .unwrap();
    assert!(!acl.can_subscribe("c", Some("carol"), "home/safe/#"));
    assert!(!acl.can_subscribe("c", Some("carol"), "home/safe/code"));
    assert!(acl.can_subscribe("c", Some("carol"), "home/#"));
    assert!(acl.can_read("c", Some("carol"), "home/kitchen"));
    assert!(!acl.can_read("c", Some("carol"), "home/safe/code"));
}

#[test]
fn empty_acl_refuses_everything() {
    let acl = Acl::parse("# nothing here\n\n", "t").unwrap();
    assert!(acl.is_empty());
    assert!(!acl.can_publish("c", None, "a"));
    assert!(!acl.can_subscribe("c", Some("u"), "a"));
    assert!(!acl.can_read("c", None, "a"));
}

#[test]
fn repeated_user_sections_accumulate_and_whitespace_is_tolerated() {
    let text =
        "user dave\r\ntopic read a\r\nuser erin\ntopic b\n  user dave  \n\ttopic   write   c d \n";
    let acl = Acl::parse(text, "t").unwrap();
    assert_eq!(acl.len(), 3);
    assert!(acl.can_read("x", Some("dave"), "a"));
    // A topic may contain spaces after the access word, as in Mosquitto.
    assert!(acl.can_publish("x", Some("dave"), "c d"));
    assert!(!acl.can_publish("x", Some("dave"), "b"));
    assert!(acl.can_publish("x", Some("erin"), "b"));
}

fn error_of(text: &str) -> String {
    Acl::parse(text, "bad.acl").unwrap_err().to_string()
}

#[test]
fn malformed_lines_are_reported_with_their_line_number() {
    assert_eq!(
        error_of("topic a\nuser\n"),
        "acl file bad.acl: line 2: `user` needs a username"
    );
    assert_eq!(
        error_of("# c\n\ntopic\n"),
        "acl file bad.acl: line 3: `topic` needs a topic"
    );
    assert_eq!(
        error_of("topic rw a/b\n"),
        "acl file bad.acl: line 1: invalid access `rw` (expected read, write, readwrite or deny)"
    );
    assert_eq!(
        error_of("pattern deny\n"),
        "acl file bad.acl: line 1: missing topic after `pattern deny`"
    );
    assert_eq!(
        error_of("topic read a/#/b\n"),
        "acl file bad.acl: line 1: invalid topic `a/#/b`: `#` must be the whole last level"
    );
    assert_eq!(
        error_of("topic read a/b+\n"),
        "acl file bad.acl: line 1: invalid topic `a/b+`: `+` must be a whole level"
    );
    assert_eq!(
        error_of("topic a\nusers bob\n"),
        "acl file bad.acl: line 2: unknown keyword `users` (expected user, topic or pattern)"
    );
}

#[test]
fn load_reports_unreadable_files_by_path() {
    let err = Acl::load(std::path::Path::new("/nonexistent/pigeon.acl")).unwrap_err();
    assert_eq!(err.line, 0);
    assert!(
        err.to_string()
            .starts_with("acl file /nonexistent/pigeon.acl: cannot read it:"),
        "{err}"
    );
}

#[test]
fn per_client_rules_decide_like_the_whole_acl() {
    let acl = site();
    let clients = [
        ("anon", None),
        ("c", Some("roger")),
        ("c", Some("admin")),
        ("sensor-7", Some("bob")),
        ("#", Some("bob")),
    ];
    let topics = [
        "public/news",
        "foo/bar",
        "commands/reboot",
        "commands/light",
        "devices/bob/lamp",
        "devices/bob/locked",
        "inbox/sensor-7",
        "$SYS/broker/connection/sensor-7/state",
    ];
    let filters = [
        "public/#",
        "#",
        "devices/bob/#",
        "sensors/+/temperature",
        "$share/g/inbox/sensor-7",
    ];
    for (id, user) in clients {
        let rules = acl.for_client(id, user);
        for topic in topics {
            assert_eq!(
                rules.can_publish(topic),
                acl.can_publish(id, user, topic),
                "{id} {user:?} {topic}"
            );
            assert_eq!(
                rules.can_read(topic),
                acl.can_read(id, user, topic),
                "{id} {user:?} {topic}"
            );
        }
        for filter in filters {
            assert_eq!(
                rules.can_subscribe(filter),
                acl.can_subscribe(id, user, filter),
                "{id} {user:?} {filter}"
            );
        }
    }
    assert!(acl
        .for_client("c", Some("bob"))
        .can_publish("devices/bob/lamp"));
}
