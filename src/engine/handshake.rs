//! A borrowed view of the HTTP request that opened a session (its query string and
//! headers), shown to the layer above when the session is created so it can keep what it
//! needs (a bearer token, a few named headers) and nothing more.
//!
//! The request is either one hyper parsed ([`HeaderMap`]) or, on the listener's direct
//! WebSocket path, raw bytes that are parsed again only when the layer above asks.

use axum::http::HeaderMap;

/// Headers of the opening request.
#[derive(Clone, Copy)]
enum Headers<'a> {
    None,
    Map(&'a HeaderMap),
    /// A complete HTTP/1.1 request head, already checked by the listener.
    Raw(&'a [u8]),
}

/// The request that opened a session.
#[derive(Clone, Copy)]
pub struct Handshake<'a> {
    query: &'a str,
    headers: Headers<'a>,
}

/// The most headers read from a raw request (the listener's direct path takes at most
/// this many).
const MAX_HEADERS: usize = 32;

impl<'a> Handshake<'a> {
    /// No request: sessions opened in-process (benchmarks, tests).
    pub fn none() -> Self {
        Handshake {
            query: "",
            headers: Headers::None,
        }
    }

    /// A request hyper parsed.
    pub fn from_map(query: Option<&'a str>, headers: &'a HeaderMap) -> Self {
        Handshake {
            query: query.unwrap_or(""),
            headers: Headers::Map(headers),
        }
    }

    /// `request` holds a whole request head; `query` is its query string.
    pub(super) fn from_raw(query: &'a str, request: &'a [u8]) -> Self {
        Handshake {
            query,
            headers: Headers::Raw(request),
        }
    }

    /// The raw query string (without `?`).
    pub fn query(&self) -> &'a str {
        self.query
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        match self.headers {
            Headers::None => None,
            Headers::Map(map) => map.get(name).map(|v| v.as_bytes()),
            Headers::Raw(bytes) => {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut request = httparse::Request::new(&mut headers);
                request.parse(bytes).ok()?;
                request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| h.value)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_parsed_requests_answer_alike() {
        let raw = b"GET /socket.io/?EIO=4&transport=websocket&token=t HTTP/1.1\r\n\
            Host: x\r\nAuthorization: Bearer abc\r\n\r\n";
        let from_raw = Handshake::from_raw("EIO=4&transport=websocket&token=t", raw);
        let mut map = HeaderMap::new();
        map.insert("authorization", "Bearer abc".parse().unwrap());
        let from_map = Handshake::from_map(Some("EIO=4&transport=websocket&token=t"), &map);
        for handshake in [from_raw, from_map] {
            assert_eq!(handshake.header("AUTHORIZATION"), Some(&b"Bearer abc"[..]));
            assert_eq!(handshake.header("cookie"), None);
            assert!(handshake.query().ends_with("token=t"));
        }
        assert_eq!(Handshake::none().header("authorization"), None);
    }
}
