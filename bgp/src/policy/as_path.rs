//! AS-path conditions: length bounds, origin/neighbour/contains AS, and
//! regular expressions over the path's text form ("65001 65002 {1 2}")
//! with the Cisco-style `_` delimiter.

use crate::types::{AsPath, AsSegment};
use regex::{Regex, RegexBuilder};

/// Bounds on [`AsPath::path_len`] (a set counts as one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LengthMatch {
    Eq(u32),
    /// Inclusive range; `None` leaves that side open.
    Range {
        ge: Option<u32>,
        le: Option<u32>,
    },
}

impl LengthMatch {
    pub fn matches(&self, path: &AsPath) -> bool {
        let n = path.path_len() as u64;
        match *self {
            LengthMatch::Eq(v) => n == u64::from(v),
            LengthMatch::Range { ge, le } => {
                ge.is_none_or(|g| n >= u64::from(g)) && le.is_none_or(|l| n <= u64::from(l))
            }
        }
    }
}

/// The origin AS (RFC 6811 2): the last AS of a final AS_SEQUENCE; the
/// local AS for an empty path (a route of our own AS); none when the path
/// ends in an AS_SET (an aggregate has no single origin).
pub fn origin_as(path: &AsPath, local_as: u32) -> Option<u32> {
    match path.segments.last() {
        None => Some(local_as),
        Some(AsSegment::Sequence(v)) => v.last().copied(),
        Some(AsSegment::Set(_)) => None,
    }
}

/// Longest source text accepted for a path regex.
pub const MAX_REGEX_SOURCE_LEN: usize = 1024;
/// Bound on the compiled program of one path regex (the input comes from
/// the API).
const REGEX_SIZE_LIMIT_BYTES: usize = 1 << 20;

/// What `_` stands for: start or end of the text, or a run of the
/// characters between ASes in the text form.
const DELIMITER: &str = "(?:^|$|[ {}]+)";

/// A compiled AS-path regular expression. Matching is unanchored (like
/// Cisco's and FRR's `as-path access-list`); `^$` matches the empty path.
#[derive(Clone, Debug)]
pub struct AsPathRegex {
    source: String,
    regex: Regex,
}

/// Why a path regex was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    #[error("longer than {MAX_REGEX_SOURCE_LEN} characters")]
    TooLong,
    #[error("{0}")]
    /// Bad syntax, or a compiled program over the size limit.
    Invalid(String),
}

impl AsPathRegex {
    /// Compiles `source`, rewriting `_` (outside `[...]` and escapes) into
    /// the delimiter matcher.
    pub fn new(source: &str) -> Result<AsPathRegex, RegexError> {
        if source.len() > MAX_REGEX_SOURCE_LEN {
            return Err(RegexError::TooLong);
        }
        let regex = RegexBuilder::new(&translate(source))
            .size_limit(REGEX_SIZE_LIMIT_BYTES)
            .build()
            .map_err(|e| RegexError::Invalid(e.to_string()))?;
        Ok(AsPathRegex {
            source: source.to_owned(),
            regex,
        })
    }

    /// The text as the operator wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Matches against a path already rendered by [`render_as_path`].
    pub fn is_match_text(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

impl PartialEq for AsPathRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for AsPathRegex {}

/// `_` → [`DELIMITER`] outside character classes and escapes.
fn translate(source: &str) -> String {
    let mut out = String::with_capacity(source.len() + 16);
    let mut in_class = false;
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '_' if !in_class => out.push_str(DELIMITER),
            _ => out.push(c),
        }
    }
    out
}

/// Renders `path` as text: sequences as space-separated ASes, sets as
/// `{a b}`, segments separated by a space. Empty path → "".
pub fn render_as_path(path: &AsPath, out: &mut impl TextSink) {
    let mut first = true;
    for seg in &path.segments {
        let (asns, set) = match seg {
            AsSegment::Sequence(v) => (v, false),
            AsSegment::Set(v) => (v, true),
        };
        if !first {
            out.push_byte(b' ');
        }
        first = false;
        if set {
            out.push_byte(b'{');
        }
        for (i, asn) in asns.iter().enumerate() {
            if i > 0 {
                out.push_byte(b' ');
            }
            push_decimal(out, *asn);
        }
        if set {
            out.push_byte(b'}');
        }
    }
}

fn push_decimal(out: &mut impl TextSink, mut v: u32) {
    let mut digits = [0u8; 10];
    let mut n = 0;
    loop {
        digits[n] = b'0' + (v % 10) as u8;
        n += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for d in digits[..n].iter().rev() {
        out.push_byte(*d);
    }
}

/// Where [`render_as_path`] writes (ASCII only).
pub trait TextSink {
    fn push_byte(&mut self, b: u8);
}

impl TextSink for String {
    fn push_byte(&mut self, b: u8) {
        self.push(char::from(b));
    }
}

/// Stack space for the text of a path: 2 KiB holds ~180 ASes; longer paths
/// spill to the heap.
const INLINE_TEXT_BYTES: usize = 2048;

/// A rendered path, kept on the stack unless it is very long.
pub(crate) struct PathText {
    inline: [u8; INLINE_TEXT_BYTES],
    len: usize,
    spill: Option<String>,
}

impl PathText {
    pub(crate) fn new() -> PathText {
        PathText {
            inline: [0; INLINE_TEXT_BYTES],
            len: 0,
            spill: None,
        }
    }

    pub(crate) fn render(&mut self, path: &AsPath) {
        self.len = 0;
        if let Some(s) = self.spill.as_mut() {
            s.clear();
        }
        render_as_path(path, self);
    }

    pub(crate) fn as_str(&self) -> &str {
        match &self.spill {
            Some(s) if !s.is_empty() => s,
            // Only ASCII digits, spaces and braces are ever written.
            _ => std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""),
        }
    }
}

impl TextSink for PathText {
    fn push_byte(&mut self, b: u8) {
        if let Some(s) = self.spill.as_mut().filter(|s| !s.is_empty()) {
            s.push(char::from(b));
        } else if self.len < INLINE_TEXT_BYTES {
            self.inline[self.len] = b;
            self.len += 1;
        } else {
            let s = self.spill.get_or_insert_with(String::new);
            s.push_str(std::str::from_utf8(&self.inline[..self.len]).unwrap_or(""));
            s.push(char::from(b));
        }
    }
}
