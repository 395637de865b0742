//! MessagePack ⇄ JSON with binary attachments: the value layer under the Node formats.
//!
//! Decoding reads one complete MessagePack value (as notepack.io does: trailing bytes are
//! an error) and converts it to JSON the way a Node server hands it to socket.io-parser:
//! `bin` becomes an attachment behind a `{"_placeholder": true, "num": N}` object, the
//! timestamp extension becomes an ISO-8601 string, the legacy undefined extension and
//! non-finite floats become `null`. A message's top-level fields are converted one by one
//! ([`Object`], [`top_array`]), each with its own attachment numbering, so that each field
//! that carries arguments maps onto one [`Args`].
//!
//! Encoding writes JSON with attachments the way notepack.io writes JavaScript values:
//! integers in their smallest form, other numbers as float64.

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use super::WireError;
use crate::socketio::packet::Args;

/// Nesting deeper than this is refused (rmpv counts two levels per container).
const MAX_DEPTH: usize = 256;

/// One top-level field of a message, converted to JSON with its own attachments.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Part {
    pub value: Value,
    pub attachments: Vec<Bytes>,
}

impl Part {
    fn json(value: Value) -> Self {
        Part {
            value,
            attachments: Vec::new(),
        }
    }

    /// The part as arguments: an array's elements, or any other value as one argument.
    pub fn into_args(self) -> Args {
        let values = match self.value {
            Value::Array(values) => values,
            other => vec![other],
        };
        Args {
            values,
            attachments: self.attachments,
        }
    }
}

/// A message that is a map (JSON object or MessagePack map), field by field.
#[derive(Debug, Default)]
pub(super) struct Object {
    fields: Vec<(String, Part)>,
}

impl Object {
    /// Reads a payload the way Node's adapter reads requests and responses: JSON when the
    /// first byte is `{`, MessagePack otherwise.
    pub fn from_payload(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.first() == Some(&b'{') {
            Self::from_json(bytes)
        } else {
            Self::from_msgpack(bytes)
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, WireError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Object {
                fields: map.into_iter().map(|(k, v)| (k, Part::json(v))).collect(),
            }),
            Ok(_) => Err(WireError::shape("expected a JSON object")),
            Err(err) => Err(WireError::Json(err.to_string())),
        }
    }

    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, WireError> {
        match read(bytes)? {
            rmpv::Value::Map(entries) => Self::from_entries(entries),
            _ => Err(WireError::shape("expected a MessagePack map")),
        }
    }

    fn from_entries(entries: Vec<(rmpv::Value, rmpv::Value)>) -> Result<Self, WireError> {
        let fields = entries
            .into_iter()
            .map(|(key, value)| Ok((map_key(key)?, part(value)?)))
            .collect::<Result<_, WireError>>()?;
        Ok(Object { fields })
    }

    fn from_part(part: Part) -> Result<Self, WireError> {
        // A nested map converted as a whole: its fields share one numbering, which is
        // right for every nested map that carries binary in one field only (packets).
        match part.value {
            Value::Object(map) => Ok(Object {
                fields: map
                    .into_iter()
                    .map(|(k, value)| {
                        let attachments = part.attachments.clone();
                        (k, Part { value, attachments })
                    })
                    .collect(),
            }),
            _ => Err(WireError::shape("expected a map")),
        }
    }

    /// Removes a field (the last one of that name, as `JSON.parse` keeps the last).
    pub fn take(&mut self, key: &str) -> Option<Part> {
        let index = self.fields.iter().rposition(|(k, _)| k == key)?;
        Some(self.fields.remove(index).1)
    }

    /// Removes a field and deserializes it; absent or `null` is `None`.
    pub fn take_as<T: DeserializeOwned>(&mut self, key: &str) -> Result<Option<T>, WireError> {
        match self.take(key) {
            None => Ok(None),
            Some(Part {
                value: Value::Null, ..
            }) => Ok(None),
            Some(part) => serde_json::from_value(part.value)
                .map(Some)
                .map_err(|err| WireError::shape(format!("field `{key}`: {err}"))),
        }
    }

    /// Like [`Object::take_as`], for a field that must be there.
    pub fn require<T: DeserializeOwned>(&mut self, key: &str) -> Result<T, WireError> {
        self.take_as(key)?
            .ok_or_else(|| WireError::shape(format!("missing field `{key}`")))
    }

    /// Removes a field that is itself a map.
    pub fn take_object(&mut self, key: &str) -> Result<Option<Object>, WireError> {
        match self.take(key) {
            None => Ok(None),
            Some(part) if part.value.is_null() => Ok(None),
            Some(part) => Object::from_part(part).map(Some),
        }
    }
}

/// A message that is a MessagePack array, element by element.
pub(super) fn top_array(bytes: &[u8]) -> Result<Vec<Part>, WireError> {
    match read(bytes)? {
        rmpv::Value::Array(items) => items.into_iter().map(part).collect(),
        _ => Err(WireError::shape("expected a MessagePack array")),
    }
}

/// Turns a nested map part into an [`Object`].
pub(super) fn object(part: Part) -> Result<Object, WireError> {
    Object::from_part(part)
}

/// Reads exactly one MessagePack value.
fn read(bytes: &[u8]) -> Result<rmpv::Value, WireError> {
    let mut rest = bytes;
    let value = rmpv::decode::read_value_with_max_depth(&mut rest, MAX_DEPTH)
        .map_err(|err| WireError::Msgpack(err.to_string()))?;
    if !rest.is_empty() {
        return Err(WireError::Msgpack(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}

fn part(value: rmpv::Value) -> Result<Part, WireError> {
    let mut attachments = Vec::new();
    let value = to_json(value, &mut attachments)?;
    Ok(Part { value, attachments })
}

fn map_key(key: rmpv::Value) -> Result<String, WireError> {
    match key {
        rmpv::Value::String(s) => s
            .into_str()
            .ok_or_else(|| WireError::shape("map key is not valid UTF-8")),
        rmpv::Value::Integer(i) => Ok(i.to_string()),
        _ => Err(WireError::shape("map key is not a string")),
    }
}

/// Converts a MessagePack value to JSON; `bin` values are appended to `attachments`.
fn to_json(value: rmpv::Value, attachments: &mut Vec<Bytes>) -> Result<Value, WireError> {
    Ok(match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => Value::Bool(b),
        rmpv::Value::Integer(i) => match (i.as_u64(), i.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(s)) => Value::from(s),
            (None, None) => Value::Null,
        },
        rmpv::Value::F32(f) => float(f64::from(f)),
        rmpv::Value::F64(f) => float(f),
        rmpv::Value::String(s) => Value::String(
            s.into_str()
                .ok_or_else(|| WireError::shape("string is not valid UTF-8"))?,
        ),
        rmpv::Value::Binary(bytes) => {
            let num = attachments.len();
            attachments.push(Bytes::from(bytes));
            placeholder(num)
        }
        rmpv::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| to_json(item, attachments))
                .collect::<Result<_, _>>()?,
        ),
        rmpv::Value::Map(entries) => {
            let mut map = Map::new();
            for (key, value) in entries {
                map.insert(map_key(key)?, to_json(value, attachments)?);
            }
            Value::Object(map)
        }
        rmpv::Value::Ext(-1, data) => match timestamp_ms(&data)? {
            Some(ms) => iso_string(ms).map_or(Value::Null, Value::String),
            None => Value::Null,
        },
        // notepack.io 2 wrote `undefined` as fixext1 type 0; JSON has only null.
        rmpv::Value::Ext(0, _) => Value::Null,
        rmpv::Value::Ext(kind, _) => return Err(WireError::Extension(kind)),
    })
}

fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The JSON object socket.io-parser puts where a binary part was.
pub(super) fn placeholder(num: usize) -> Value {
    let mut map = Map::new();
    map.insert("_placeholder".into(), Value::Bool(true));
    map.insert("num".into(), Value::from(num));
    Value::Object(map)
}

/// If `value` is a binary placeholder, its attachment number.
fn placeholder_num(value: &Map<String, Value>) -> Option<Option<u64>> {
    if value.get("_placeholder") != Some(&Value::Bool(true)) {
        return None;
    }
    Some(value.get("num").and_then(Value::as_u64))
}

/// Milliseconds since the epoch of a MessagePack timestamp (32, 64 or 96 bit), truncated
/// toward zero as `new Date(ms)` does; `None` outside the range of a JavaScript `Date`.
fn timestamp_ms(data: &[u8]) -> Result<Option<i64>, WireError> {
    let (secs, nanos): (i64, u32) = match data.len() {
        4 => (i64::from(be_u32(data)), 0),
        8 => {
            let word = u64::from(be_u32(&data[..4])) << 32 | u64::from(be_u32(&data[4..]));
            ((word & 0x3_ffff_ffff) as i64, (word >> 34) as u32)
        }
        12 => {
            let mut secs = [0u8; 8];
            secs.copy_from_slice(&data[4..]);
            (i64::from_be_bytes(secs), be_u32(&data[..4]))
        }
        n => return Err(WireError::shape(format!("timestamp of {n} bytes"))),
    };
    if nanos >= 1_000_000_000 {
        return Err(WireError::shape("timestamp nanoseconds out of range"));
    }
    let whole = i128::from(secs) * 1000 + i128::from(nanos / 1_000_000);
    let ms = if whole < 0 && nanos % 1_000_000 != 0 {
        whole + 1
    } else {
        whole
    };
    // The range of a JavaScript Date: ±8.64e15 ms around the epoch.
    const LIMIT: i128 = 8_640_000_000_000_000;
    Ok((-LIMIT..=LIMIT).contains(&ms).then_some(ms as i64))
}

fn be_u32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_be_bytes(word)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Broken-down UTC time of `ms` since the epoch.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: usize,
    hour: i64,
    minute: i64,
    second: i64,
    milli: i64,
}

fn civil(ms: i64) -> Civil {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        // 1970-01-01 was a Thursday.
        weekday: (days + 4).rem_euclid(7) as usize,
        hour: in_day / 3_600_000,
        minute: in_day / 60_000 % 60,
        second: in_day / 1000 % 60,
        milli: in_day % 1000,
    }
}

/// `ms` since the epoch as `Date.prototype.toISOString` writes it
/// (`1970-01-01T00:00:00.000Z`; six-digit signed years outside 0..=9999).
pub(super) fn iso_string(ms: i64) -> Option<String> {
    const LIMIT: i64 = 8_640_000_000_000_000;
    if !(-LIMIT..=LIMIT).contains(&ms) {
        return None;
    }
    let c = civil(ms);
    let year = if (0..=9999).contains(&c.year) {
        format!("{:04}", c.year)
    } else if c.year < 0 {
        format!("-{:06}", -c.year)
    } else {
        format!("+{:06}", c.year)
    };
    Some(format!(
        "{year}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        c.month, c.day, c.hour, c.minute, c.second, c.milli
    ))
}

/// `ms` since the epoch as JavaScript's `Date.prototype.toString` writes it in UTC,
/// which is what Node puts in a handshake's `time`.
pub(super) fn js_date_string(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let c = civil(ms);
    format!(
        "{} {} {:02} {:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        DAYS[c.weekday],
        MONTHS[(c.month as usize).saturating_sub(1) % 12],
        c.day,
        c.year,
        c.hour,
        c.minute,
        c.second
    )
}

/// Splits `args` at argument `index`: that one argument with only the attachments it
/// uses, renumbered from 0.
pub(super) fn single_arg(args: &Args, index: usize) -> Result<Args, WireError> {
    let Some(value) = args.values.get(index) else {
        return Ok(Args::default());
    };
    let mut out = Args::default();
    let value = renumber(value, &args.attachments, &mut out.attachments)?;
    out.values.push(value);
    Ok(out)
}

fn renumber(value: &Value, from: &[Bytes], to: &mut Vec<Bytes>) -> Result<Value, WireError> {
    Ok(match value {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| renumber(item, from, to))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => match placeholder_num(map) {
            Some(num) => {
                let bytes = attachment(num, from)?;
                to.push(bytes.clone());
                placeholder(to.len() - 1)
            }
            None => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), renumber(v, from, to)?)))
                    .collect::<Result<_, WireError>>()?,
            ),
        },
        other => other.clone(),
    })
}

fn attachment(num: Option<u64>, attachments: &[Bytes]) -> Result<&Bytes, WireError> {
    let num = num.ok_or(WireError::Placeholder(u64::MAX))?;
    usize::try_from(num)
        .ok()
        .and_then(|i| attachments.get(i))
        .ok_or(WireError::Placeholder(num))
}

/// Writes MessagePack the way notepack.io does. Writing into a `Vec` cannot fail.
#[derive(Debug, Default)]
pub(super) struct Writer {
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
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn timestamps_become_iso_strings_like_js_dates() {
        assert_eq!(timestamp_ms(&hex("00000000")), Ok(Some(0)));
        assert_eq!(iso_string(0).unwrap(), "1970-01-01T00:00:00.000Z");
        // 2000-06-13T00:00:00.000Z, the example in notepack.io's README.
        let ms = timestamp_ms(&hex("39457980")).unwrap().unwrap();
        assert_eq!(iso_string(ms).unwrap(), "2000-06-13T00:00:00.000Z");
        // timestamp 64: 1.5 s after the epoch.
        let word: u64 = (500_000_000u64 << 34) | 1;
        let ms = timestamp_ms(&word.to_be_bytes()).unwrap().unwrap();
        assert_eq!(iso_string(ms).unwrap(), "1970-01-01T00:00:01.500Z");
        // timestamp 96: 0.5 s before the epoch is -1 s + 500 ms.
        let mut data = 500_000_000u32.to_be_bytes().to_vec();
        data.extend_from_slice(&(-1i64).to_be_bytes());
        let ms = timestamp_ms(&data).unwrap().unwrap();
        assert_eq!(iso_string(ms).unwrap(), "1969-12-31T23:59:59.500Z");
        // Beyond a JS Date's range: null, not an error.
        let mut far = 0u32.to_be_bytes().to_vec();
        far.extend_from_slice(&i64::MAX.to_be_bytes());
        assert_eq!(timestamp_ms(&far), Ok(None));
        assert_eq!(
            iso_string(8_640_000_000_000_000).unwrap(),
            "+275760-09-13T00:00:00.000Z"
        );
        assert_eq!(
            iso_string(-62_198_755_200_000).unwrap(),
            "-000001-01-01T00:00:00.000Z"
        );
        assert!(timestamp_ms(&hex("0000")).is_err());
        // timestamp 64 with nanoseconds past one second.
        assert!(timestamp_ms(&hex("ffffffff00000000")).is_err());
    }

    #[test]
    fn js_date_string_matches_node_handshake_time() {
        // "Thu Nov 26 2026 00:17:06 GMT+0000 (Coordinated Universal Time)", issued 1795652226346.
        assert_eq!(
            js_date_string(1_795_652_226_346),
            "Thu Nov 26 2026 00:17:06 GMT+0000 (Coordinated Universal Time)"
        );
    }

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

    #[test]
    fn binary_round_trips_through_placeholders() {
        let bytes = hex("92a362696ec403010203");
        let parts = match read(&bytes).unwrap() {
            rmpv::Value::Array(items) => items,
            _ => unreachable!(),
        };
        let mut attachments = Vec::new();
        let value = to_json(rmpv::Value::Array(parts), &mut attachments).unwrap();
        assert_eq!(
            value,
            serde_json::json!(["bin", {"_placeholder": true, "num": 0}])
        );
        assert_eq!(attachments, vec![Bytes::from_static(&[1, 2, 3])]);
        let mut w = Writer::default();
        w.json(&value, &attachments).unwrap();
        assert_eq!(w.buf, bytes);
        // A placeholder with no attachment is refused, not written as a map.
        assert_eq!(w.json(&value, &[]), Err(WireError::Placeholder(0)));
    }

    #[test]
    fn single_arg_renumbers_attachments() {
        let args = Args {
            values: vec![
                serde_json::json!({"_placeholder": true, "num": 0}),
                serde_json::json!({"a": {"_placeholder": true, "num": 1}}),
            ],
            attachments: vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
        };
        let second = single_arg(&args, 1).unwrap();
        assert_eq!(
            second.values,
            vec![serde_json::json!({"a": {"_placeholder": true, "num": 0}})]
        );
        assert_eq!(second.attachments, vec![Bytes::from_static(b"b")]);
        assert_eq!(single_arg(&args, 5).unwrap(), Args::default());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let samples: &[&[u8]] = &[
            b"",
            b"\xc1",
            b"\x93",
            b"\xdd\xff\xff\xff\xff",
            b"\xc7\x03\xff\x00\x00\x00",
            b"\xd4\x05\x00",
            b"\x81\xc4\x01a\x01",
            b"\xa3ab",
            b"\x90\x90",
            &[0x91; 10_000],
        ];
        for sample in samples {
            assert!(Object::from_payload(sample).is_err(), "{sample:?}");
            assert!(top_array(sample).is_err(), "{sample:?}");
        }
    }
}
