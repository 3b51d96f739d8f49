//! A lazy JSON lookup: finds the value at a JSON pointer (RFC 6901) in a byte slice
//! without building values or allocating. Members before the target are skipped by
//! their syntax alone; the document after the target is not read at all.
//!
//! Objects are searched 64 bytes at a time: SIMD compares give bit masks of quotes and
//! brackets, a prefix XOR of the quote mask marks the bytes inside strings, and only
//! the remaining events (brackets, string starts) are visited one by one. An object
//! with a backslash before its member takes the byte-by-byte path, which decodes escapes.

/// A compiled JSON pointer such as `/created_at` or `/meta/ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPointer {
    tokens: Vec<Box<str>>,
    text: Box<str>,
}

/// Why a pointer string cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerError(pub &'static str);

impl JsonPointer {
    /// Compiles an RFC 6901 pointer: `""` is the whole document, otherwise it starts
    /// with `/`; `~1` stands for `/` and `~0` for `~`.
    pub fn parse(text: &str) -> Result<Self, PointerError> {
        if text.is_empty() {
            return Err(PointerError("a JSON pointer to a field starts with \"/\", e.g. \"/created_at\""));
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(PointerError("a JSON pointer starts with \"/\", e.g. \"/created_at\""));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => return Err(PointerError("\"~\" in a JSON pointer must be followed by 0 or 1")),
                    }
                } else {
                    token.push(c);
                }
            }
            tokens.push(token.into_boxed_str());
        }
        Ok(Self { tokens, text: text.into() })
    }

    /// The pointer as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The reference tokens, unescaped: a record's field names, outermost first.
    pub fn tokens(&self) -> Vec<&str> {
        self.tokens.iter().map(|t| &**t).collect()
    }

    /// Finds the value the pointer names in `doc`.
    pub fn lookup<'a>(&self, doc: &'a [u8]) -> Lookup<'a> {
        self.resolve(Scanner { buf: doc, pos: 0 }, 0)
    }

    /// Follows the tokens from `from` on, the scanner at the value the ones before named.
    fn resolve<'a>(&self, mut s: Scanner<'a>, from: usize) -> Lookup<'a> {
        let doc = s.buf;
        for (depth, token) in self.tokens.iter().enumerate().skip(from) {
            s.skip_ws();
            let step = match s.peek() {
                // The block search checks less syntax and does not decode escapes: when
                // it finds no member, or meets a backslash, the byte path (from the same
                // place) decides.
                Some(b'{') => {
                    let at = s.pos;
                    match s.find_member_blocks(token.as_bytes()) {
                        Some(true) => Ok(true),
                        _ => {
                            s.pos = at;
                            s.find_member(token.as_bytes())
                        }
                    }
                }
                Some(b'[') => match token.parse::<usize>() {
                    Ok(index) => s.find_element(index),
                    Err(_) => Ok(false),
                },
                Some(_) if depth > 0 => Ok(false), // a scalar has no members
                _ => Err(()),
            };
            match step {
                Ok(true) => {}
                Ok(false) => return Lookup::Missing,
                Err(()) => return Lookup::NotJson,
            }
        }
        s.skip_ws();
        let start = s.pos;
        let found = match s.peek() {
            Some(b'"') => match s.skip_string() {
                Ok(escaped) => Lookup::String { raw: &doc[start + 1..s.pos - 1], escaped },
                Err(()) => return Lookup::NotJson,
            },
            Some(b'-' | b'0'..=b'9') => {
                s.skip_number();
                Lookup::Number(&doc[start..s.pos])
            }
            Some(_) => match s.skip_value() {
                Ok(()) => Lookup::Other,
                Err(()) => return Lookup::NotJson,
            },
            None => return Lookup::NotJson,
        };
        // The value must end where its container goes on: a truncated record is not JSON.
        s.skip_ws();
        match s.peek() {
            Some(b',' | b'}' | b']') => found,
            _ => Lookup::NotJson,
        }
    }
}

/// Most pointers [`PointerSet::lookup_all`] takes in one pass (an event time and the
/// segments of a stream); past this, each is looked up alone.
pub const MAX_SET: usize = 16;

/// Several pointers looked up in one pass over a JSON object: the members of its top
/// level are visited once for all of them (the event time and a stream's segments),
/// instead of once each.
#[derive(Debug, Clone, Default)]
pub struct PointerSet {
    pointers: Vec<JsonPointer>,
}

impl PointerSet {
    pub fn new(pointers: Vec<JsonPointer>) -> Self {
        Self { pointers }
    }

    pub fn len(&self) -> usize {
        self.pointers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pointers.is_empty()
    }

    /// `out[i]` gets what pointer `i` finds in `doc`, exactly as
    /// [`JsonPointer::lookup`] would (the property tests compare them). Does not allocate.
    pub fn lookup_all<'a>(&self, doc: &'a [u8], out: &mut [Lookup<'a>]) {
        let n = self.pointers.len().min(out.len());
        let alone = |out: &mut [Lookup<'a>]| {
            for (o, p) in out.iter_mut().zip(&self.pointers) {
                *o = p.lookup(doc);
            }
        };
        let mut s = Scanner { buf: doc, pos: 0 };
        s.skip_ws();
        if n > MAX_SET || s.peek() != Some(b'{') {
            return alone(out);
        }
        let mut found = [usize::MAX; MAX_SET];
        match s.find_members_blocks(&self.pointers[..n], &mut found[..n]) {
            Some(()) => {
                for i in 0..n {
                    out[i] = match found[i] {
                        // a member not there is the byte path's to decide, as alone
                        // (it checks the syntax the block search skips)
                        usize::MAX => self.pointers[i].lookup(doc),
                        pos => self.pointers[i].resolve(Scanner { buf: doc, pos }, 1),
                    };
                }
            }
            // a backslash or the end of the input: each on its own (the byte path)
            None => alone(out),
        }
    }
}

/// What a pointer lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// A string value: its raw bytes between the quotes, and whether they hold escapes.
    String { raw: &'a [u8], escaped: bool },
    /// A number value, as written.
    Number(&'a [u8]),
    /// `null`, a boolean, an object or an array.
    Other,
    /// The document is valid as far as it was read, but has no such member.
    Missing,
    /// The document is not JSON (as far as it was read).
    NotJson,
}

// Word-at-a-time search (SWAR): eight bytes per step, no SIMD intrinsics needed.
const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `v` equal to `b`; exact for the lowest such byte
/// (higher ones may be false positives, which callers never look at).
#[inline(always)]
fn eq_mask(v: u64, b: u8) -> u64 {
    let x = v ^ (LO * b as u64);
    x.wrapping_sub(LO) & !x & HI
}

#[inline(always)]
fn word(buf: &[u8], i: usize) -> Option<u64> {
    buf.get(i..i + 8).map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
}

/// Index of the next `"` or `\\` at or after `i`.
#[inline(always)]
fn find_quote_or_backslash(buf: &[u8], mut i: usize) -> Option<usize> {
    while let Some(v) = word(buf, i) {
        let m = eq_mask(v, b'"') | eq_mask(v, b'\\');
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    buf.get(i..)?.iter().position(|&b| b == b'"' || b == b'\\').map(|p| i + p)
}

/// Index of the next `"`, `{`, `}`, `[` or `]` at or after `i`; may also stop at `y`,
/// `Y`, `_` or DEL (which the caller skips: they never stand outside strings in JSON).
#[inline(always)]
fn find_structural(buf: &[u8], mut i: usize) -> Option<usize> {
    while let Some(v) = word(buf, i) {
        // `{` `}` `[` `]` all become 0x79 under `| 0x20` then `& 0xF9`.
        let m = eq_mask(v, b'"') | eq_mask((v | (LO * 0x20)) & (LO * 0xF9), 0x79);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    buf.get(i..)?.iter().position(|&b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']')).map(|p| i + p)
}

/// Bit `i` set where byte `i` of a 64-byte block is a quote, an opening or a closing
/// bracket. Bytes past the end of the input count as spaces.
struct BlockMasks {
    quote: u64,
    backslash: u64,
    open: u64,
    close: u64,
}

impl BlockMasks {
    #[inline(always)]
    fn of(rest: &[u8]) -> Self {
        match rest.get(..64) {
            Some(full) => Self::of_block(full),
            None => {
                let mut block = [b' '; 64];
                block[..rest.len()].copy_from_slice(rest);
                Self::of_block(&block)
            }
        }
    }

    #[inline(always)]
    fn of_block(block: &[u8]) -> Self {
        use wide::u8x16;
        let (quote, open, close) = (u8x16::splat(b'"'), u8x16::splat(b'{'), u8x16::splat(b'}'));
        let backslash = u8x16::splat(b'\\');
        let case = u8x16::splat(0x20); // `[` | 0x20 == `{`, `]` | 0x20 == `}`
        let mut m = BlockMasks { quote: 0, backslash: 0, open: 0, close: 0 };
        for (k, lane) in block.chunks_exact(16).enumerate() {
            let Ok(bytes) = <[u8; 16]>::try_from(lane) else { continue };
            let v = u8x16::new(bytes);
            let folded = v | case;
            let shift = 16 * k;
            m.quote |= u64::from(v.cmp_eq(quote).move_mask() as u16) << shift;
            m.backslash |= u64::from(v.cmp_eq(backslash).move_mask() as u16) << shift;
            m.open |= u64::from(folded.cmp_eq(open).move_mask() as u16) << shift;
            m.close |= u64::from(folded.cmp_eq(close).move_mask() as u16) << shift;
        }
        m
    }
}

/// Bit `i` of the result is the XOR of bits `0..=i` of `x`.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    #[inline]
    fn consume(&mut self, b: u8) -> Result<(), ()> {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(())
        }
    }

    /// At `{`: moves to the value of member `key` (Ok(true)), or past the object (Ok(false)).
    fn find_member(&mut self, key: &[u8]) -> Result<bool, ()> {
        self.pos += 1; // '{'
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(false);
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(());
            }
            let start = self.pos + 1;
            let escaped = self.skip_string()?;
            let name = &self.buf[start..self.pos - 1];
            self.consume(b':')?;
            let matches = if escaped { unescaped_eq(name, key) } else { name == key };
            if matches {
                return Ok(true);
            }
            self.skip_ws();
            self.skip_value()?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(false);
                }
                _ => return Err(()),
            }
        }
    }

    /// At `{`: like [`Self::find_member`], but reads the object 64 bytes at a time (see
    /// the module docs). `None`: a backslash or the end of the input came first.
    fn find_member_blocks(&mut self, key: &[u8]) -> Option<bool> {
        let buf = self.buf;
        let start = self.pos;
        let mut depth = 0u32;
        let mut in_string = 0u64; // all ones while a string runs on from the last block
        let mut block_start = start;
        while block_start < buf.len() {
            let m = BlockMasks::of(&buf[block_start..]);
            if m.backslash != 0 {
                return None;
            }
            // Bits from the opening quote up to (not including) the closing one.
            let inside = prefix_xor(m.quote) ^ in_string;
            in_string = ((inside as i64) >> 63) as u64;
            let brackets = (m.open | m.close) & !inside;
            let events = brackets | (m.quote & inside);
            // Events not yet visited; inside nested containers only brackets matter.
            let mut todo = !0u64;
            loop {
                let pending = todo & if depth > 1 { brackets } else { events };
                if pending == 0 {
                    break;
                }
                let bit = pending.trailing_zeros();
                todo = (!0u64 << bit) << 1;
                let i = block_start + bit as usize;
                match buf[i] {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos = i + 1;
                            return Some(false);
                        }
                    }
                    _ => {
                        // A string starts at depth 1: a key if it is followed by ':'.
                        if depth == 1
                            && buf.get(i + 1 + key.len()) == Some(&b'"')
                            && &buf[i + 1..i + 1 + key.len()] == key
                        {
                            self.pos = i + 2 + key.len();
                            self.skip_ws();
                            if self.peek() == Some(b':') {
                                self.pos += 1;
                                return Some(true);
                            }
                        }
                    }
                }
            }
            block_start += 64;
        }
        None
    }

    /// At `{`: like [`Self::find_member_blocks`] for the first token of each pointer at
    /// once: `found[i]` gets the position after the `:` of the first member named by
    /// pointer `i`'s first token (`usize::MAX` where none). `Some(())`: every one found,
    /// or the object read to its end; `None`: a backslash or the end of the input first.
    /// The block loop is [`Self::find_member_blocks`]'s on purpose: one loop shared by both
    /// through a closure cost the single lookup 8–10 % in the record-path bench.
    fn find_members_blocks(&mut self, pointers: &[JsonPointer], found: &mut [usize]) -> Option<()> {
        let buf = self.buf;
        let mut left = pointers.len();
        let mut depth = 0u32;
        let mut in_string = 0u64;
        let mut block_start = self.pos;
        while block_start < buf.len() {
            let m = BlockMasks::of(&buf[block_start..]);
            if m.backslash != 0 {
                return None;
            }
            let inside = prefix_xor(m.quote) ^ in_string;
            in_string = ((inside as i64) >> 63) as u64;
            let brackets = (m.open | m.close) & !inside;
            let events = brackets | (m.quote & inside);
            let mut todo = !0u64;
            loop {
                let pending = todo & if depth > 1 { brackets } else { events };
                if pending == 0 {
                    break;
                }
                let bit = pending.trailing_zeros();
                todo = (!0u64 << bit) << 1;
                let i = block_start + bit as usize;
                match buf[i] {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            self.pos = i + 1;
                            return Some(());
                        }
                    }
                    _ if depth == 1 => {
                        // a string at depth 1: a key of some pointers if followed by ':'
                        for (k, p) in pointers.iter().enumerate() {
                            let key = p.tokens[0].as_bytes();
                            if found[k] != usize::MAX
                                || buf.get(i + 1 + key.len()) != Some(&b'"')
                                || &buf[i + 1..i + 1 + key.len()] != key
                            {
                                continue;
                            }
                            let mut colon = i + 2 + key.len();
                            while let Some(b' ' | b'\n' | b'\r' | b'\t') = buf.get(colon) {
                                colon += 1;
                            }
                            if buf.get(colon) == Some(&b':') {
                                found[k] = colon + 1;
                                left -= 1;
                            }
                        }
                        if left == 0 {
                            return Some(());
                        }
                    }
                    _ => {}
                }
            }
            block_start += 64;
        }
        None
    }

    /// At `[`: moves to element `index` (Ok(true)), or past the array (Ok(false)).
    fn find_element(&mut self, index: usize) -> Result<bool, ()> {
        self.pos += 1; // '['
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(false);
        }
        let mut i = 0;
        loop {
            self.skip_ws();
            if i == index {
                return Ok(true);
            }
            self.skip_value()?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(false);
                }
                _ => return Err(()),
            }
            i += 1;
        }
    }

    /// At `"`: moves past the closing quote; returns whether the string holds escapes.
    #[inline]
    fn skip_string(&mut self) -> Result<bool, ()> {
        let mut i = self.pos + 1;
        let mut escaped = false;
        loop {
            i = find_quote_or_backslash(self.buf, i).ok_or(())?;
            if self.buf[i] == b'"' {
                self.pos = i + 1;
                return Ok(escaped);
            }
            escaped = true;
            i += 2; // the backslash and the escaped byte
        }
    }

    fn skip_number(&mut self) {
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn skip_literal(&mut self, lit: &[u8]) -> Result<(), ()> {
        if self.buf[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(())
        }
    }

    /// Skips one value of any kind. Nested containers are skipped by counting brackets
    /// outside strings, without checking their inner syntax.
    fn skip_value(&mut self) -> Result<(), ()> {
        match self.peek() {
            Some(b'"') => self.skip_string().map(|_| ()),
            Some(b'-' | b'0'..=b'9') => {
                self.skip_number();
                Ok(())
            }
            Some(b't') => self.skip_literal(b"true"),
            Some(b'f') => self.skip_literal(b"false"),
            Some(b'n') => self.skip_literal(b"null"),
            Some(b'{' | b'[') => {
                // Count brackets outside strings; strings are skipped whole.
                let mut depth = 0usize;
                let mut i = self.pos;
                loop {
                    i = find_structural(self.buf, i).ok_or(())?;
                    match self.buf[i] {
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.pos = i + 1;
                                return Ok(());
                            }
                        }
                        b'"' => {
                            self.pos = i;
                            self.skip_string()?;
                            i = self.pos;
                            continue;
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => Err(()),
        }
    }
}

/// Compares a raw (escaped) JSON string body with a plain key, decoding as it goes.
fn unescaped_eq(raw: &[u8], key: &[u8]) -> bool {
    let mut buf = [0u8; 4];
    let mut k = key;
    let mut i = 0;
    while i < raw.len() {
        let decoded: &[u8] = if raw[i] == b'\\' {
            let Some(&e) = raw.get(i + 1) else {
                return false;
            };
            i += 2;
            let c = match e {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let Some(hex) = raw.get(i..i + 4) else {
                        return false;
                    };
                    i += 4;
                    let Some(code) = std::str::from_utf8(hex).ok().and_then(|h| u32::from_str_radix(h, 16).ok()) else {
                        return false;
                    };
                    match char::from_u32(code) {
                        Some(c) => c,
                        None => return false, // surrogate pairs never match a config key here
                    }
                }
                _ => return false,
            };
            c.encode_utf8(&mut buf).as_bytes()
        } else {
            i += 1;
            std::slice::from_ref(&raw[i - 1])
        };
        let Some(rest) = k.strip_prefix(decoded) else {
            return false;
        };
        k = rest;
    }
    k.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> JsonPointer {
        JsonPointer::parse(s).unwrap()
    }

    #[test]
    fn finds_top_level_and_nested_members() {
        let doc = br#"{"a": 1, "b": {"c": [10, {"d": "x"}]}, "ts": "2026-01-01T00:00:00Z"}"#;
        assert_eq!(p("/a").lookup(doc), Lookup::Number(b"1"));
        assert_eq!(p("/b/c/0").lookup(doc), Lookup::Number(b"10"));
        assert_eq!(p("/b/c/1/d").lookup(doc), Lookup::String { raw: b"x", escaped: false });
        assert_eq!(p("/ts").lookup(doc), Lookup::String { raw: b"2026-01-01T00:00:00Z", escaped: false });
        assert_eq!(p("/b").lookup(doc), Lookup::Other);
    }

    #[test]
    fn missing_members_and_indexes() {
        let doc = br#"{"a": {"b": 1}, "list": [1, 2]}"#;
        assert_eq!(p("/x").lookup(doc), Lookup::Missing);
        assert_eq!(p("/a/x").lookup(doc), Lookup::Missing);
        assert_eq!(p("/list/5").lookup(doc), Lookup::Missing);
        assert_eq!(p("/list/x").lookup(doc), Lookup::Missing);
        assert_eq!(p("/a/b/c").lookup(doc), Lookup::Missing);
        assert_eq!(p("/x").lookup(b"{}"), Lookup::Missing);
    }

    #[test]
    fn skips_strings_with_brackets_and_escapes() {
        let doc = br#"{"s": "}{\"][", "n": {"x": "]"}, "ts": 5}"#;
        assert_eq!(p("/ts").lookup(doc), Lookup::Number(b"5"));
    }

    #[test]
    fn escaped_keys_and_pointer_escapes() {
        let doc = br#"{"a\/b": 1, "t\u0073": 2, "m~n": 3}"#;
        assert_eq!(p("/a~1b").lookup(doc), Lookup::Number(b"1"));
        assert_eq!(p("/ts").lookup(doc), Lookup::Number(b"2"));
        assert_eq!(p("/m~0n").lookup(doc), Lookup::Number(b"3"));
    }

    #[test]
    fn word_scans_find_the_first_match_at_any_offset() {
        for n in 0..40 {
            let mut doc = vec![b'a'; n];
            doc.extend_from_slice(br#"\"x"#);
            doc.extend_from_slice(b"yyyy_[");
            assert_eq!(find_quote_or_backslash(&doc, 0), Some(n));
            assert_eq!(find_structural(&doc, 0), Some(n + 1));
            assert_eq!(find_quote_or_backslash(&doc[..n], 0), None);
        }
        // a byte just below a match must not hide it (borrow propagation)
        assert_eq!(find_quote_or_backslash(b"\x00\x01\"abcdefgh", 0), Some(2));
    }

    #[test]
    fn skips_nested_containers_with_letters_that_look_structural() {
        let doc = br#"{"a": [{"y": "Y_"}, [1, {"b": "}"}]], "key": {"x": []}, "ts": 7}"#;
        assert_eq!(JsonPointer::parse("/ts").unwrap().lookup(doc), Lookup::Number(b"7"));
    }

    #[test]
    fn block_search_agrees_with_the_byte_path() {
        let long = "x".repeat(70);
        let docs = [
            format!(r#"{{"a": "{long}", "b": {{"ts": 1}}, "ts": 2}}"#),
            format!(r#"{{"{long}": [{{"ts": 3}}], "tsx": 4, "ts" : 5}}"#),
            format!(r#"{{"n": {{"m": {{"o": "ts"}}}}, "v": "ts", "ts":6}}"#),
            format!(r#"{{"a": [1, 2, {{"b": "]}}"}}], "c": "{long}{long}", "ts": "t"}}"#),
            r#"{"a": 1, "b": 2}"#.to_string(),
            r#"{"a": {"ts": 1}"#.to_string(),
            format!(r#"{{"a": "{long}"#),
        ];
        for doc in &docs {
            for ptr in ["/ts", "/b/ts", "/a", "/n/m/o"] {
                let p = JsonPointer::parse(ptr).unwrap();
                let mut fast = Scanner { buf: doc.as_bytes(), pos: 0 };
                let mut slow = Scanner { buf: doc.as_bytes(), pos: 0 };
                let key = p.tokens[0].as_bytes();
                let (f, s) = (fast.find_member_blocks(key), slow.find_member(key));
                assert_eq!(f == Some(true), s == Ok(true), "{doc} {ptr}");
                if f == Some(true) {
                    assert_eq!(fast.pos, slow.pos, "{doc} {ptr}");
                }
            }
        }
        assert_eq!(JsonPointer::parse("/ts").unwrap().lookup(docs[1].as_bytes()), Lookup::Number(b"5"));
        assert_eq!(
            JsonPointer::parse("/n/m/o").unwrap().lookup(docs[2].as_bytes()),
            Lookup::String { raw: b"ts", escaped: false }
        );
    }

    #[test]
    fn not_json() {
        assert_eq!(p("/a").lookup(b"hello"), Lookup::NotJson);
        assert_eq!(p("/a").lookup(b""), Lookup::NotJson);
        assert_eq!(p("/a").lookup(br#"{"b": 1"#), Lookup::NotJson);
        assert_eq!(p("/a").lookup(br#"{"b" 1}"#), Lookup::NotJson);
        assert_eq!(p("/a").lookup(br#"{"a": "unterminated"#), Lookup::NotJson);
        assert_eq!(p("/a").lookup(br#"{b: 1}"#), Lookup::NotJson);
    }

    #[test]
    fn bad_pointers() {
        assert!(JsonPointer::parse("created_at").is_err());
        assert!(JsonPointer::parse("").is_err());
        assert!(JsonPointer::parse("/a~2").is_err());
    }
}
