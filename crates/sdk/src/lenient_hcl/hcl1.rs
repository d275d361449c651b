//! HCL1 leniency on top of hcl-rs's HCL2 parser.
//!
//! Vault and OpenBao read their config with HCL1, which accepts several
//! attributes on one line and commas between them:
//! `listener "tcp" { address = "127.0.0.1:8200"  tls_disable = true }`.
//! HCL2 wants one attribute per line in a multi-attribute block. This module
//! owns the repair: parse; when the parser stops at one of those spots, turn
//! the separator into a newline (or add one after the block's `{` / before
//! its `}`), and parse again, a bounded number of times. Errors that remain
//! are reported at their line and column in the text the user wrote.
//!
//! The edits only ever turn a space, tab or comma into a newline, or insert a
//! newline, at the exact spot the parser rejected; they never touch text the
//! parser accepted as a string, so no value changes meaning.

/// The most repairs tried on one text, so that hostile input stays cheap.
const MAX_REPAIRS: usize = 256;

/// A parse failure, located in the caller's original text.
#[derive(Debug)]
pub(crate) struct Failure {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    /// The parser's message.
    pub message: String,
}

/// Parses `text` as HCL, accepting HCL1's one-line multi-attribute blocks.
pub(crate) fn parse(text: &str) -> Result<hcl::Body, Failure> {
    let mut work = text.to_string();
    // Offsets in `work` where a newline was inserted, ascending.
    let mut inserted: Vec<usize> = Vec::new();
    let mut repairs = 0;
    loop {
        let err = match hcl::parse(&work) {
            Ok(body) => return Ok(body),
            Err(hcl::Error::Parse(p)) => p,
            Err(other) => {
                return Err(Failure {
                    line: None,
                    column: None,
                    message: other.to_string(),
                })
            }
        };
        let offset = err.location().offset();
        let fixed = repairs < MAX_REPAIRS
            && match repair(&work, offset, err.message()) {
                Some(Edit::Replace(at)) => {
                    work.replace_range(at..at + 1, "\n");
                    true
                }
                Some(Edit::Insert(at)) => {
                    work.insert(at, '\n');
                    for p in inserted.iter_mut().filter(|p| **p >= at) {
                        *p += 1;
                    }
                    let idx = inserted.partition_point(|p| *p < at);
                    inserted.insert(idx, at);
                    true
                }
                None => false,
            };
        if !fixed {
            let original = offset.saturating_sub(inserted.partition_point(|p| *p < offset));
            let (line, column) = line_column(text, original);
            return Err(Failure {
                line: Some(line),
                column: Some(column),
                message: err.message().to_string(),
            });
        }
        repairs += 1;
    }
}

enum Edit {
    /// Replace the one-byte separator at this offset with a newline.
    Replace(usize),
    /// Insert a newline at this offset.
    Insert(usize),
}

/// Decides the edit for a parse error at `offset`, if it is an HCL1 spot.
fn repair(text: &str, offset: usize, message: &str) -> Option<Edit> {
    if offset > text.len() || !text.is_char_boundary(offset) {
        return None;
    }
    let bytes = text.as_bytes();
    let at = bytes.get(offset).copied();
    let before = offset.checked_sub(1).and_then(|i| bytes.get(i)).copied();
    let separator_before = matches!(before, Some(b' ' | b'\t'));
    if message.contains("invalid block body") {
        match at {
            // `{ a = 1, b = 2 }`
            Some(b',') => Some(Edit::Replace(offset)),
            // A one-line block now spans lines: its `{` needs a newline after.
            Some(b'\n' | b'\r') => block_open(text, offset).map(|brace| Edit::Insert(brace + 1)),
            // `{ a = 1  b = 2 }`: the second attribute starts here.
            _ if separator_before => Some(Edit::Replace(offset - 1)),
            _ => None,
        }
    } else if message.contains("expected newline or eof") {
        match at {
            // `b = 2 }` closing a block that now spans lines.
            Some(b'}') => Some(Edit::Insert(offset)),
            // `b = 2, c = 3` once the block spans lines.
            Some(b',') => Some(Edit::Replace(offset)),
            // `a = 1  b = 2` at the top level.
            _ if separator_before => Some(Edit::Replace(offset - 1)),
            _ => None,
        }
    } else {
        None
    }
}

/// The offset of the first `{` outside double quotes on the line ending at
/// `end`, the opening brace of the one-line block the parser was reading.
fn block_open(text: &str, end: usize) -> Option<usize> {
    let line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.as_bytes()[line_start..end].iter().enumerate() {
        match (in_string, escaped, *b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (false, _, b'"') => in_string = true,
            (false, _, b'{') => {
                let brace = line_start + i;
                // Already followed by a newline: nothing to repair here.
                return match text.as_bytes().get(brace + 1) {
                    Some(b'\n' | b'\r') => None,
                    _ => Some(brace),
                };
            }
            _ => {}
        }
    }
    None
}

/// 1-based line and character column of a byte offset (clamped to the text).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(text: &str) -> Vec<String> {
        let body = parse(text).expect("repaired");
        let mut out = Vec::new();
        for block in body.blocks() {
            for attr in block.body().attributes() {
                out.push(attr.key().to_string());
            }
        }
        out
    }

    #[test]
    fn one_line_blocks_with_spaces_or_commas() {
        assert_eq!(attrs("l \"tcp\" { a = \"x\"  b = true }"), ["a", "b"]);
        assert_eq!(
            attrs("l \"tcp\" { a = \"x\", b = true, c = 3 }"),
            ["a", "b", "c"]
        );
        assert_eq!(attrs("l \"tcp\" {a = \"x\"\tb = true}"), ["a", "b"]);
        // A brace inside a label does not confuse the repair.
        assert_eq!(attrs("l \"t{p\" { a = \"x\"  b = true }"), ["a", "b"]);
    }

    #[test]
    fn strings_are_not_altered() {
        let body = parse("l \"tcp\" { a = \"x, y\"  b = \"p q\" }").expect("repaired");
        let values: Vec<String> = body
            .blocks()
            .flat_map(|b| b.body().attributes())
            .map(|a| a.expr().to_string())
            .collect();
        assert_eq!(values, ["\"x, y\"", "\"p q\""]);
    }

    #[test]
    fn remaining_errors_point_into_the_original_text() {
        // Line 1 needs repairs (insertions); the real error is on line 3.
        let err = parse("l \"tcp\" { a = 1  b = 2 }\n\nc = = 3\n").expect_err("bad");
        assert_eq!(err.line, Some(3));
        assert_eq!(err.column, Some(5));
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncé d", 7), (2, 4));
        assert_eq!(line_column("ab", 99), (1, 3));
    }
}
