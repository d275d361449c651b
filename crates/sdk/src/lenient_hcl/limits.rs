//! Complexity limits that keep hcl-rs's recursive-descent parser inside its
//! stack on hostile input.
//!
//! hcl-rs recurses once per nested bracket, interpolation and operator, so a
//! few thousand `[` or `+1` overflow a thread's stack, which aborts the whole
//! process (a panic cannot catch it). This module owns a cheap pre-scan that
//! refuses texts nesting deeper than [`MAX_DEPTH`] or using more than
//! [`MAX_OPERATORS`] operator characters outside strings and comments. A
//! Vault config nests three or four levels and uses no operators beyond the
//! sign of `max_request_size = -1`, so no real config comes near either
//! limit. The parse additionally runs on a thread with a generous stack (see
//! `parse::hcl_to_value`), which leaves an order of magnitude of headroom.

/// Deepest nesting of `{`, `[`, `(` and template interpolations accepted.
pub(crate) const MAX_DEPTH: usize = 64;

/// Most operator characters (`+ - * / % ! ? & | < > :`, and template
/// directives `%{`) accepted outside strings and comments.
pub(crate) const MAX_OPERATORS: usize = 256;

/// Where a limit was exceeded: byte offset and the reason.
pub(crate) struct TooComplex {
    /// Byte offset in the text.
    pub offset: usize,
    /// Which limit, for the error message.
    pub message: String,
}

enum Frame {
    /// Inside a quoted string (or heredoc-free template).
    Str,
    /// Inside `${ ... }` / `%{ ... }` within a string; counts the `{` opened
    /// inside so that the closing `}` of the interpolation is recognised.
    Interp(usize),
}

/// Scans `text` and fails at the first point where a limit is exceeded.
pub(crate) fn check(text: &str) -> Result<(), TooComplex> {
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut depth = 0usize;
    let mut operators = 0usize;
    let mut i = 0;
    let too_deep = |offset| TooComplex {
        offset,
        message: format!("nesting deeper than {MAX_DEPTH} levels"),
    };
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        if matches!(stack.last(), Some(Frame::Str)) {
            match (b, next) {
                (b'\\', _) => i += 1,
                (b'"', _) => {
                    stack.pop();
                }
                // `$${` and `%%{` are escapes for a literal `${` / `%{`.
                (b'$', Some(b'$')) | (b'%', Some(b'%')) => i += 1,
                (b'$' | b'%', Some(b'{')) => {
                    if b == b'%' {
                        operators += 1;
                    }
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(too_deep(i));
                    }
                    stack.push(Frame::Interp(0));
                    i += 1;
                }
                _ => {}
            }
        } else {
            match (b, next) {
                (b'#', _) | (b'/', Some(b'/')) => {
                    // Line comment: skip to the end of the line.
                    i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
                    continue;
                }
                (b'/', Some(b'*')) => {
                    i = text[i + 2..]
                        .find("*/")
                        .map_or(bytes.len(), |n| i + 2 + n + 2);
                    continue;
                }
                (b'"', _) => stack.push(Frame::Str),
                (b'{' | b'[' | b'(', _) => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(too_deep(i));
                    }
                    if let (b'{', Some(Frame::Interp(open))) = (b, stack.last_mut()) {
                        *open += 1;
                    }
                }
                (b'}' | b']' | b')', _) => {
                    depth = depth.saturating_sub(1);
                    if b == b'}' {
                        match stack.last_mut() {
                            Some(Frame::Interp(0)) => {
                                stack.pop();
                            }
                            Some(Frame::Interp(open)) => *open -= 1,
                            _ => {}
                        }
                    }
                }
                (
                    b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'?' | b'&' | b'|' | b'<' | b'>'
                    | b':',
                    _,
                ) => {
                    operators += 1;
                }
                _ => {}
            }
        }
        if operators > MAX_OPERATORS {
            return Err(TooComplex {
                offset: i,
                message: format!("more than {MAX_OPERATORS} operators in expressions"),
            });
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_configs_pass() {
        let text = r#"
            # comment with ((((( and ---- and /* */
            storage "redb" { path = "/var/lib/{x}/[y]/(z)-+*:?" }
            listener "tcp" {
              address = "127.0.0.1:8200"  // trailing: comment
              max_request_size = -1
            }
            /* a block comment [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ */
            api_addr = "https://x:8200/${"{"}"
        "#;
        assert!(check(text).is_ok());
        // Brackets and operators inside strings do not count.
        let long_string = format!("a = \"{}\"", "[-".repeat(10_000));
        assert!(check(&long_string).is_ok());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let ok = format!("a = {}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check(&ok).is_ok());
        let deep = format!(
            "a = {}1{}",
            "[".repeat(MAX_DEPTH + 1),
            "]".repeat(MAX_DEPTH + 1)
        );
        let err = check(&deep).expect_err("too deep");
        assert_eq!(err.offset, 4 + MAX_DEPTH);
        // Interpolations nest too.
        let interp = format!("a = {}", "\"${".repeat(MAX_DEPTH + 1));
        let err = check(&interp).expect_err("interpolations nest too deep");
        assert!(
            err.offset > 4 && err.offset < interp.len(),
            "{}",
            err.offset
        );
    }

    #[test]
    fn long_operator_chains_are_refused() {
        assert!(check(&format!("a = 1{}", "+1".repeat(MAX_OPERATORS))).is_ok());
        let long = format!("a = 1{}", "+1".repeat(MAX_OPERATORS + 1));
        assert!(!check(&long)
            .expect_err("too many operators")
            .message
            .is_empty());
        assert!(check(&format!(
            "a = \"{}\"",
            "%{ if x }".repeat(MAX_OPERATORS + 1)
        ))
        .is_err());
    }
}
