//! The small encodings of an archive: hex digits, uuids between their text and their bytes,
//! and the 64-bit FNV-1a hash that guards its lines; and the refusal the backends' imports
//! share.

use std::fmt::Write as _;

use crate::error::Error;
use crate::tenant::Tenant;

/// A uuid's 16 bytes as its canonical text.
pub(crate) fn uuid_text(b: &[u8]) -> String {
    let hex = hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A uuid's text (with or without hyphens or braces) as its 16 bytes.
pub(crate) fn uuid_bytes(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, '-' | '{' | '}'))
        .collect();
    match unhex(&digits) {
        Some(b) if b.len() == 16 => Ok(b),
        _ => Err(format!("{text:?} is not a uuid")),
    }
}

/// Lowercase hex digits of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn unhex(digits: &str) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    unhex_into(digits, &mut bytes)?;
    Some(bytes)
}

/// The bytes of hex `digits` into `bytes` (cleared first), as [`unhex`] reads them.
pub(crate) fn unhex_into(digits: &str, bytes: &mut Vec<u8>) -> Option<()> {
    bytes.clear();
    if !digits.len().is_multiple_of(2) || !digits.is_ascii() {
        return None;
    }
    bytes.reserve(digits.len() / 2);
    for i in (0..digits.len()).step_by(2) {
        bytes.push(u8::from_str_radix(&digits[i..i + 2], 16).ok()?);
    }
    Some(())
}

/// Where the first byte of `bytes` is that a JSON string must escape (a control character,
/// below 0x20, `"` or `\\`), looked for eight bytes at a time: none of them, no byte that
/// `COPY`'s text format escapes either.
pub(crate) fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        let (quote, backslash) = (x ^ (ONES * 0x22), x ^ (ONES * 0x5c));
        // A byte below 0x20, a zero byte of `quote` or of `backslash`: its high bit set here.
        let hit = (x.wrapping_sub(ONES * 0x20) & !x)
            | (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash);
        if hit & HIGHS != 0 {
            break;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|i| at + i)
}

/// 64-bit FNV-1a, continued from `hash`.
pub(crate) fn fnv1a64(mut hash: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Refuses to fill (`operation`: clone, import) tenant `tenant`'s container holding
/// `triggers` triggers, which `server` cannot turn off while rows are written: `Ok` when it
/// holds none.
#[cfg_attr(not(any(feature = "mysql", feature = "sqlite")), allow(dead_code))]
pub(crate) fn refuse_triggers(
    operation: &'static str,
    tenant: &Tenant,
    triggers: i64,
    server: &str,
) -> Result<(), Error> {
    if triggers == 0 {
        return Ok(());
    }
    Err(Error::Unsupported {
        operation,
        reason: format!(
            "the {} of tenant \"{tenant}\" holds {triggers} trigger{}, which {server} cannot turn \
             off while the rows are written; nothing was created",
            if operation == "clone" {
                "source"
            } else {
                "migrated container"
            },
            if triggers == 1 { "" } else { "s" }
        ),
    })
}
