//! The table of `#[on_*]` attributes: which context each one hands its handlers.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// One `#[on_*]` attribute.
#[derive(Clone, Copy)]
pub(crate) struct Hook {
    pub attr: &'static str,
    kind: HookKind,
    /// Whether a topic pattern may be given.
    pub topic: bool,
}

#[derive(Clone, Copy)]
enum HookKind {
    /// A handler in the packet's path, with its context type.
    Handler(&'static str),
    /// An event, with its marker type.
    Event(&'static str),
}

const fn handler(attr: &'static str, cx: &'static str, topic: bool) -> Hook {
    Hook {
        attr,
        kind: HookKind::Handler(cx),
        topic,
    }
}

const fn event(attr: &'static str, marker: &'static str, topic: bool) -> Hook {
    Hook {
        attr,
        kind: HookKind::Event(marker),
        topic,
    }
}

pub(crate) const HOOKS: &[Hook] = &[
    handler("on_pre_connect", "PreConnectCx", false),
    handler("on_authenticate", "AuthenticateCx", false),
    handler("on_authorize_publish", "AuthorizePublishCx", true),
    handler("on_authorize_subscribe", "AuthorizeSubscribeCx", false),
    handler("on_authorize_forward", "AuthorizeForwardCx", true),
    handler("on_published", "PublishedCx", true),
    handler("on_request", "RequestCx", true),
    event("on_client", "Client", false),
    event("on_client_ready", "ClientReady", false),
    event("on_client_disconnect", "ClientDisconnect", false),
    event("on_client_error", "ClientError", false),
    event("on_connection_error", "ConnectionError", false),
    event("on_keepalive_timeout", "KeepaliveTimeout", false),
    event("on_publish", "Publish", true),
    event("on_ack", "Ack", true),
    event("on_subscribe", "Subscribe", false),
    event("on_unsubscribe", "Unsubscribe", false),
    event("on_connack_sent", "ConnackSent", false),
    event("on_closed", "Closed", false),
    event("on_ping", "Ping", false),
];

impl Hook {
    pub(crate) fn find(name: &str) -> Option<Hook> {
        HOOKS.iter().copied().find(|h| h.attr == name)
    }

    /// True for `#[on_request]`, registered with its limits.
    pub(crate) fn is_request(&self) -> bool {
        self.attr == "on_request"
    }

    /// Hooks whose client may be absent (a will whose client is gone, the
    /// broker's own messages): `Client` is refused there, `Option<Client>` not.
    pub(crate) fn client_may_be_absent(&self) -> bool {
        matches!(
            self.attr,
            "on_authorize_publish" | "on_published" | "on_publish"
        )
    }

    /// The context type, as a path the generated code can use.
    pub(crate) fn context(&self) -> TokenStream {
        match self.kind {
            HookKind::Handler(cx) => {
                let cx = format_ident!("{}", cx);
                quote!(::pigeon::__private::#cx)
            }
            HookKind::Event(marker) => {
                let marker = format_ident!("{}", marker);
                quote!(::pigeon::__private::EventCx<::pigeon::__private::kind::#marker>)
            }
        }
    }
}
