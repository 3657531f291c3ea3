//! The admin API's guard: `Authorization: Bearer TOKEN`, basic auth whose
//! password is TOKEN, or `?token=TOKEN` (an `EventSource` cannot set headers).

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::{admin::error, Http};

/// Lets the request through only with the configured token.
pub(crate) async fn require(
    State(http): State<Arc<Http>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = http.engine.config.admin_token.as_deref() else {
        return error(
            StatusCode::FORBIDDEN,
            "the admin API is off: set admin_token",
        );
    };
    match presented(&request) {
        Some(given) if bool::from(given.as_bytes().ct_eq(token.as_bytes())) => {
            next.run(request).await
        }
        Some(_) => refused("wrong admin token"),
        None => refused("the admin API needs a token: Authorization: Bearer TOKEN"),
    }
}

fn refused(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"pigeon\""),
    );
    response
}

/// The token the request carries, if any.
fn presented(request: &Request) -> Option<String> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        if let Some(token) = value.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (_user, password) = text.split_once(':')?;
            return Some(password.to_owned());
        }
        return None;
    }
    let query = request.uri().query()?;
    url_query(query, "token")
}

/// The decoded value of `key` in a query string.
pub(crate) fn url_query(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(v))
    })
}

/// `%XX` and `+` decoding (a malformed escape is kept as written).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_decoded() {
        assert_eq!(
            url_query("a=1&token=t%2F0+k", "token").as_deref(),
            Some("t/0 k")
        );
        assert_eq!(url_query("token=100%", "token").as_deref(), Some("100%"));
        assert_eq!(url_query("a=1", "token"), None);
    }
}
