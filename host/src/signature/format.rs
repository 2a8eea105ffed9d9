//! The signed-artifact file format: one `.wasm` component with its manifest and
//! signature in two custom sections at the very end.
//!
//! ```text
//! ┌──────────────────────────────┬─────────────────────────────┬──────────────────────────────┐
//! │ component (header + sections)│ custom "blastwall.manifest" │ custom "blastwall.signature" │
//! └──────────────────────────────┴─────────────────────────────┴──────────────────────────────┘
//!   signed: every byte of it        signed: the manifest TOML      key id + ed25519 signature
//! ```
//!
//! The file is still a valid component (custom sections are ignored by
//! runtimes), so one file is the unit of distribution. The framing is strict:
//! our two sections must be the last two, in this order, exactly once each; a
//! `blastwall.*` section anywhere else, a duplicate, trailing bytes or a
//! truncated section make the file malformed. Everything before the manifest
//! section is the component, and it is what gets compiled.
//!
//! Only the top-level framing (section id, LEB128 size, custom-section name) is
//! read here, by hand: a few dozen lines that are easy to fuzz and that never
//! interpret the component itself, which wasmtime validates when it compiles
//! the verified bytes.

use std::fmt;

/// Name of the custom section holding the manifest (TOML, UTF-8).
pub const MANIFEST_SECTION: &str = "blastwall.manifest";
/// Name of the custom section holding the signature record.
pub const SIGNATURE_SECTION: &str = "blastwall.signature";
const OUR_PREFIX: &str = "blastwall.";

/// The preamble of a component-model binary: magic, version 0x0d, layer 1.
pub const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

/// Why a file is not a well-formed artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not a WebAssembly binary, or a core module rather than a component.
    #[error("not a WebAssembly component ({0})")]
    NotComponent(&'static str),
    /// The section framing is broken.
    #[error("malformed artifact: {0}")]
    Malformed(String),
}

/// A file split into its parts. Borrowed: nothing is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    /// The component: every byte before our sections.
    pub component: &'a [u8],
    /// The manifest section's payload, if present.
    pub manifest: Option<&'a [u8]>,
    /// The signature section's payload, if present.
    pub signature: Option<&'a [u8]>,
}

struct Section<'a> {
    start: usize,
    custom_name: Option<&'a str>,
    payload: &'a [u8],
}

impl fmt::Debug for Section<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "section at {} ({:?})", self.start, self.custom_name)
    }
}

/// Reads an unsigned LEB128 u32 at `*pos`.
fn read_u32(bytes: &[u8], pos: &mut usize) -> Result<u32, FormatError> {
    let mut result: u64 = 0;
    for shift in (0..35).step_by(7) {
        let byte = *bytes
            .get(*pos)
            .ok_or_else(|| FormatError::Malformed(format!("truncated length at byte {}", *pos)))?;
        *pos += 1;
        result |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return u32::try_from(result)
                .map_err(|_| FormatError::Malformed(format!("length too large at byte {}", *pos)));
        }
    }
    Err(FormatError::Malformed(format!(
        "overlong length ending at byte {}",
        *pos
    )))
}

fn sections(bytes: &[u8]) -> Result<Vec<Section<'_>>, FormatError> {
    if bytes.len() < 8 || bytes[..4] != COMPONENT_PREAMBLE[..4] {
        return Err(FormatError::NotComponent("no \\0asm header"));
    }
    if bytes[4..8] != COMPONENT_PREAMBLE[4..8] {
        return Err(FormatError::NotComponent(
            "a core module or an unknown binary version",
        ));
    }
    let mut sections = Vec::new();
    let mut pos = 8;
    while pos < bytes.len() {
        let start = pos;
        let id = bytes[pos];
        pos += 1;
        let size = read_u32(bytes, &mut pos)? as usize;
        let end = pos
            .checked_add(size)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                FormatError::Malformed(format!(
                    "section at byte {start} runs past the end of the file"
                ))
            })?;
        let body = &bytes[pos..end];
        let (custom_name, payload) = if id == 0 {
            let mut name_pos = 0;
            let name_len = read_u32(body, &mut name_pos)? as usize;
            let name_end = name_pos
                .checked_add(name_len)
                .filter(|&e| e <= body.len())
                .ok_or_else(|| {
                    FormatError::Malformed(format!(
                        "custom section name at byte {start} is truncated"
                    ))
                })?;
            let name = std::str::from_utf8(&body[name_pos..name_end]).map_err(|_| {
                FormatError::Malformed(format!("custom section name at byte {start} is not UTF-8"))
            })?;
            (Some(name), &body[name_end..])
        } else {
            (None, body)
        };
        sections.push(Section {
            start,
            custom_name,
            payload,
        });
        pos = end;
    }
    Ok(sections)
}

/// Splits `bytes` into component, manifest and signature, enforcing the framing rules.
pub fn split(bytes: &[u8]) -> Result<Parts<'_>, FormatError> {
    let sections = sections(bytes)?;
    let ours: Vec<(usize, &Section<'_>)> = sections
        .iter()
        .enumerate()
        .filter(|(_, s)| s.custom_name.is_some_and(|n| n.starts_with(OUR_PREFIX)))
        .collect();
    let n = sections.len();
    let name_at = |i: usize| sections.get(i).and_then(|s| s.custom_name);
    let expected: &[(usize, &str)] = match ours.len() {
        0 => &[],
        1 if name_at(n - 1) == Some(MANIFEST_SECTION) => &[(n - 1, MANIFEST_SECTION)],
        2 => &[(n - 2, MANIFEST_SECTION), (n - 1, SIGNATURE_SECTION)],
        _ => {
            return Err(FormatError::Malformed(format!(
                "{} blastwall sections; a signed artifact has exactly a manifest and a signature",
                ours.len()
            )));
        }
    };
    if ours.len() != expected.len()
        || ours
            .iter()
            .zip(expected)
            .any(|((index, section), (want_index, want_name))| {
                index != want_index || section.custom_name != Some(want_name)
            })
    {
        let found: Vec<String> = ours
            .iter()
            .map(|(_, s)| format!("{} at byte {}", s.custom_name.unwrap_or_default(), s.start))
            .collect();
        return Err(FormatError::Malformed(format!(
            "blastwall sections must be the last sections, manifest then signature; found {}",
            found.join(", ")
        )));
    }
    let component_end = ours.first().map_or(bytes.len(), |(_, s)| s.start);
    Ok(Parts {
        component: &bytes[..component_end],
        manifest: ours.first().map(|(_, s)| s.payload),
        signature: ours.get(1).map(|(_, s)| s.payload),
    })
}

/// Encodes one custom section.
pub fn custom_section(name: &str, payload: &[u8]) -> Vec<u8> {
    let section = wasm_encoder::CustomSection {
        name: name.into(),
        data: payload.into(),
    };
    let mut out = vec![wasm_encoder::Section::id(&section)];
    wasm_encoder::Encode::encode(&section, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> Vec<u8> {
        let mut bytes = COMPONENT_PREAMBLE.to_vec();
        bytes.extend(custom_section("name", b"x"));
        bytes
    }

    #[test]
    fn splits_a_signed_artifact() {
        let mut bytes = component();
        let component_len = bytes.len();
        bytes.extend(custom_section(MANIFEST_SECTION, b"name = 'x'"));
        bytes.extend(custom_section(SIGNATURE_SECTION, b"sig"));
        let parts = split(&bytes).unwrap();
        assert_eq!(parts.component.len(), component_len);
        assert_eq!(parts.manifest, Some(&b"name = 'x'"[..]));
        assert_eq!(parts.signature, Some(&b"sig"[..]));
    }

    #[test]
    fn plain_components_have_no_manifest_or_signature() {
        let bytes = component();
        let parts = split(&bytes).unwrap();
        assert_eq!(parts.component, &bytes[..]);
        assert_eq!((parts.manifest, parts.signature), (None, None));
    }

    #[test]
    fn rejects_misplaced_duplicated_or_reordered_sections() {
        let m = custom_section(MANIFEST_SECTION, b"m");
        let s = custom_section(SIGNATURE_SECTION, b"s");
        let other = custom_section("producers", b"p");
        for tail in [
            [s.clone(), m.clone()].concat(),
            [m.clone(), s.clone(), other.clone()].concat(),
            [m.clone(), other.clone(), s.clone()].concat(),
            [m.clone(), m.clone(), s.clone()].concat(),
            s.clone(),
            [custom_section("blastwall.extra", b""), m.clone(), s.clone()].concat(),
        ] {
            let bytes = [component(), tail].concat();
            assert!(
                matches!(split(&bytes), Err(FormatError::Malformed(_))),
                "{:?}",
                split(&bytes)
            );
        }
    }

    #[test]
    fn rejects_truncation_and_foreign_binaries() {
        let mut bytes = [component(), custom_section(MANIFEST_SECTION, b"manifest")].concat();
        bytes.pop();
        assert!(matches!(split(&bytes), Err(FormatError::Malformed(_))));
        assert_eq!(
            split(b"\0asm\x01\0\0\0"),
            Err(FormatError::NotComponent(
                "a core module or an unknown binary version"
            ))
        );
        assert_eq!(
            split(b"#!/bin/sh"),
            Err(FormatError::NotComponent("no \\0asm header"))
        );
        assert!(
            split(&[
                0, 0x61, 0x73, 0x6d, 0x0d, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
            ])
            .is_err()
        );
    }
}
