//! Session and socket ids: 20 URL-safe characters, as Node's Socket.IO makes them.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Length of an id in characters.
pub const SID_LEN: usize = 20;

/// An Engine.IO session id or a Socket.IO socket id: 15 random bytes in URL-safe base64.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; SID_LEN]);

impl Sid {
    /// A new random id.
    pub fn random() -> Self {
        let bytes: [u8; 15] = rand::random();
        let mut out = [0u8; SID_LEN];
        let written = URL_SAFE_NO_PAD
            .encode_slice(bytes, &mut out)
            .expect("15 bytes encode to exactly 20 characters");
        debug_assert_eq!(written, SID_LEN);
        Sid(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a sid holds only base64 characters")
    }
}

/// Why a string is not a sid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a session id")]
pub struct InvalidSid;

impl FromStr for Sid {
    type Err = InvalidSid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != SID_LEN
            || !bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        {
            return Err(InvalidSid);
        }
        let mut out = [0u8; SID_LEN];
        out.copy_from_slice(bytes);
        Ok(Sid(out))
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_20_url_safe_chars_and_parse_back() {
        for _ in 0..100 {
            let sid = Sid::random();
            assert_eq!(sid.as_str().len(), SID_LEN);
            assert_eq!(sid.as_str().parse::<Sid>(), Ok(sid));
        }
        assert_ne!(Sid::random(), Sid::random());
    }

    #[test]
    fn rejects_wrong_length_and_characters() {
        assert!("short".parse::<Sid>().is_err());
        assert!("aaaaaaaaaaaaaaaaaaa/".parse::<Sid>().is_err());
        assert!("aaaaaaaaaaaaaaaaaaaaa".parse::<Sid>().is_err());
    }
}
