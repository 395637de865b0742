//! Encoding: MessagePack written the way notepack.io writes JavaScript values, JSON
//! placeholders going back to `bin`.

use bytes::Bytes;
use serde_json::Value;

use super::placeholders::{attachment, placeholder_num};
use crate::adapter::redis::wire::WireError;

/// Writes MessagePack the way notepack.io does. Writing into a `Vec` cannot fail.
#[derive(Debug, Default)]
pub(in crate::adapter::redis::wire) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    pub fn bool(&mut self, b: bool) {
        self.buf.push(if b { 0xc3 } else { 0xc2 });
    }

    pub fn uint(&mut self, n: u64) {
        match n {
            0..=0x7f => self.buf.push(n as u8),
            0x80..=0xff => self.buf.extend_from_slice(&[0xcc, n as u8]),
            0x100..=0xffff => {
                self.buf.push(0xcd);
                self.buf.extend_from_slice(&(n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.buf.push(0xce);
                self.buf.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.buf.push(0xcf);
                self.buf.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    pub fn int(&mut self, n: i64) {
        if n >= 0 {
            return self.uint(n as u64);
        }
        if n >= -32 {
            self.buf.push(n as i8 as u8);
        } else if n >= i64::from(i8::MIN) {
            self.buf.extend_from_slice(&[0xd0, n as i8 as u8]);
        } else if n >= i64::from(i16::MIN) {
            self.buf.push(0xd1);
            self.buf.extend_from_slice(&(n as i16).to_be_bytes());
        } else if n >= i64::from(i32::MIN) {
            self.buf.push(0xd2);
            self.buf.extend_from_slice(&(n as i32).to_be_bytes());
        } else {
            self.buf.push(0xd3);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    fn float(&mut self, f: f64) {
        // A JavaScript number that is integral travels as an integer.
        if f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_808.0 {
            return self.int(f as i64);
        }
        self.buf.push(0xcb);
        self.buf.extend_from_slice(&f.to_be_bytes());
    }

    fn len_header(
        &mut self,
        len: usize,
        fix: u8,
        fix_max: usize,
        m8: Option<u8>,
        m16: u8,
        m32: u8,
    ) {
        if len <= fix_max {
            self.buf.push(fix | len as u8);
        } else if let (Some(m8), true) = (m8, len <= 0xff) {
            self.buf.extend_from_slice(&[m8, len as u8]);
        } else if len <= 0xffff {
            self.buf.push(m16);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(m32);
            self.buf.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }

    pub fn str(&mut self, s: &str) {
        self.len_header(s.len(), 0xa0, 31, Some(0xd9), 0xda, 0xdb);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn bin(&mut self, bytes: &[u8]) {
        if bytes.len() <= 0xff {
            self.buf.extend_from_slice(&[0xc4, bytes.len() as u8]);
        } else if bytes.len() <= 0xffff {
            self.buf.push(0xc5);
            self.buf
                .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        } else {
            self.buf.push(0xc6);
            self.buf
                .extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        }
        self.buf.extend_from_slice(bytes);
    }

    pub fn array(&mut self, len: usize) {
        self.len_header(len, 0x90, 15, None, 0xdc, 0xdd);
    }

    pub fn map(&mut self, len: usize) {
        self.len_header(len, 0x80, 15, None, 0xde, 0xdf);
    }

    pub fn strs(&mut self, items: &[String]) {
        self.array(items.len());
        for item in items {
            self.str(item);
        }
    }

    /// Writes a JSON value; placeholders become `bin` from `attachments`.
    pub fn json(&mut self, value: &Value, attachments: &[Bytes]) -> Result<(), WireError> {
        match value {
            Value::Null => self.nil(),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => self.uint(u),
                (None, Some(i), _) => self.int(i),
                (None, None, Some(f)) => self.float(f),
                (None, None, None) => self.nil(),
            },
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.array(items.len());
                for item in items {
                    self.json(item, attachments)?;
                }
            }
            Value::Object(map) => match placeholder_num(map) {
                Some(num) => self.bin(attachment(num, attachments)?),
                None => {
                    self.map(map.len());
                    for (key, item) in map {
                        self.str(key);
                        self.json(item, attachments)?;
                    }
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::hex;
    use super::*;

    #[test]
    fn integers_use_the_smallest_form() {
        let cases: &[(i64, &str)] = &[
            (0, "00"),
            (127, "7f"),
            (128, "cc80"),
            (1000, "cd03e8"),
            (70_000, "ce00011170"),
            (1 << 40, "cf0000010000000000"),
            (-1, "ff"),
            (-32, "e0"),
            (-33, "d0df"),
            (-200, "d1ff38"),
            (-70_000, "d2fffeee90"),
            (-(1 << 40), "d3ffffff0000000000"),
        ];
        for (n, expected) in cases {
            let mut w = Writer::default();
            w.int(*n);
            assert_eq!(w.buf, hex(expected), "{n}");
        }
        let mut w = Writer::default();
        w.json(&serde_json::json!([2.5, 3.0]), &[]).unwrap();
        assert_eq!(w.buf, hex("92cb400400000000000003"));
    }

    #[test]
    fn lengths_use_the_smallest_header() {
        let mut w = Writer::default();
        w.str(&"x".repeat(32));
        assert_eq!(&w.buf[..2], &[0xd9, 32]);
        let mut w = Writer::default();
        w.array(16);
        assert_eq!(w.buf, [0xdc, 0, 16]);
        let mut w = Writer::default();
        w.map(70_000);
        assert_eq!(w.buf, [0xdf, 0, 1, 0x11, 0x70]);
        let mut w = Writer::default();
        w.bin(&[0; 300]);
        assert_eq!(&w.buf[..3], &[0xc5, 1, 44]);
    }
}
