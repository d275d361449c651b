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
//!
//! The scan also refuses references and indexes (`a.b`, `a[0]`, `f().x`)
//! outside strings. hcl-edit backtracks on each unclosed index after a
//! traversal, so `x.y[x.y[x.y[…` costs twice as much per level: fuzzing
//! found 4 KB inputs that took over two minutes to be refused. Vault's and
//! OpenBao's HCL1 has no references at all (values are literals), and the
//! policy and config readers refuse every non-literal anyway, so this only
//! moves the refusal before the parser. Heredoc bodies are text and are
//! skipped.

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
    // Where the current run of identifier characters (outside strings)
    // began, and whether it is a name rather than a number.
    let mut run_is_name = false;
    let mut prev: u8 = b' ';
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
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                let continues = prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'-';
                if !continues {
                    run_is_name = b.is_ascii_alphabetic() || b == b'_';
                }
            } else if matches!(b, b'.' | b'[') {
                let after_word = prev.is_ascii_alphanumeric() || prev == b'_' || prev == b'-';
                // `1.5` is a number; `x.y`, `x[0]` and `2[0]` are not
                // literals.
                let traversal = after_word && (run_is_name || b == b'[');
                if traversal || matches!(prev, b']' | b')') {
                    return Err(TooComplex {
                        offset: i,
                        message: "references and indexes (such as a.b or a[0]) are not \
                                  allowed: values must be literals"
                            .into(),
                    });
                }
            }
            prev = b;
            match (b, next) {
                (b'<', Some(b'<')) => {
                    if let Some(end) = heredoc_end(text, i) {
                        i = end;
                        prev = b' ';
                        continue;
                    }
                    operators += 1;
                }
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

/// If a heredoc (`<<ID` or `<<-ID`, then a newline) starts at `at`, the
/// offset just past its closing line (a line holding only `ID`, indentation
/// allowed); `None` when `at` does not start a well-formed heredoc, which the
/// parser then reports.
fn heredoc_end(text: &str, at: usize) -> Option<usize> {
    let rest = text.get(at + 2..)?;
    let rest_at = at + 2;
    let (rest, rest_at) = match rest.strip_prefix('-') {
        Some(r) => (r, rest_at + 1),
        None => (rest, rest_at),
    };
    let id_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .unwrap_or(rest.len());
    if id_len == 0 {
        return None;
    }
    let id = &rest[..id_len];
    let after_id = rest[id_len..]
        .strip_prefix('\n')
        .or_else(|| rest[id_len..].strip_prefix("\r\n"))?;
    let mut offset = rest_at + (rest.len() - after_id.len());
    for line in after_id.split_inclusive('\n') {
        offset += line.len();
        if line.trim() == id {
            return Some(offset);
        }
    }
    None
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

    #[test]
    fn references_and_indexes_are_refused_before_the_parser() {
        // The shapes on which hcl-edit backtracks exponentially, in
        // attribute values, object values and interpolations.
        for text in [
            format!("a = {}", "x.y[".repeat(40)),
            format!("a = {{ b = {} }}", "x.0[".repeat(40)),
            format!("a = \"{}\"", "${x.y[".repeat(40)),
            "a = f().x".to_string(),
            "s = 2[\n70+7 / 0]".to_string(),
            "a = b[0][1]".to_string(),
            "path \"x\" { capabilities = var.caps }".to_string(),
        ] {
            let err = check(&text).expect_err(&text);
            assert!(err.message.contains("literals"), "{}", err.message);
        }
        let err = check("a = 1\nb = x.y").expect_err("a reference");
        assert_eq!(err.offset, "a = 1\nb = x".len());
    }

    #[test]
    fn literals_numbers_and_heredocs_pass() {
        let text = r#"
            path "secret/data/{{identity.entity.id}}/*" {
              capabilities = ["read", "list"]
              allowed_parameters = { "ttl" = ["1h", "2.5h"] }
            }
            max_lease_ttl = 1.5e3
            ratio = -0.25
            key-with-dash_and_underscore = true
            doc = <<EOT
              not code: a.b[0] f().x [[[[
              EOT
            doc2 = <<-END
            x.y[
            END
            after = "heredocs end where their id stands alone"
        "#;
        check(text).unwrap_or_else(|e| panic!("{} at {}", e.message, e.offset));
        // A reference after the heredoc is still seen.
        let err = check("d = <<E\nx.y\nE\nz = q.r\n").expect_err("after heredoc");
        assert_eq!(err.offset, "d = <<E\nx.y\nE\nz = q".len());
        // An unterminated heredoc is left for the parser to report, and
        // its text is scanned like any other.
        assert!(check("d = <<E\nx.y\n").is_err());
    }
}
