//! HCL as Vault and OpenBao read it, for the server config and ACL
//! policies alike: hcl-rs (an HCL2 parser) with HCL1's leniency for
//! one-line multi-attribute blocks ([`hcl1`]), bounds on nesting that keep
//! hostile input from overflowing the stack ([`limits`]), and the parse run
//! on a thread with a large stack so that a parser panic becomes an error.

mod hcl1;
mod limits;

/// Stack for the parsing thread. hcl-rs recurses per nesting level; with
/// the [`limits`] in force it needs well under 2 MiB even in a debug build,
/// so this leaves ample headroom whatever thread calls us.
const HCL_STACK_BYTES: usize = 32 * 1024 * 1024;

/// An HCL text that did not parse, located in the caller's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HclError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column in characters, when known.
    pub column: Option<usize>,
    /// The parser's message, on one line.
    pub message: String,
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses `text` into an HCL body, with HCL1's leniency and bounded
/// nesting.
pub fn parse_body(text: &str) -> Result<hcl::Body, HclError> {
    if let Err(e) = limits::check(text) {
        let (line, column) = hcl1::line_column(text, e.offset);
        return Err(HclError {
            line: Some(line),
            column: Some(column),
            message: one_line(&e.message),
        });
    }
    let owned = text.to_string();
    let worker = std::thread::Builder::new()
        .name("hcl-parse".to_string())
        .stack_size(HCL_STACK_BYTES)
        .spawn(move || parse_inline(&owned));
    match worker {
        Ok(handle) => handle.join().unwrap_or_else(|_| {
            Err(HclError {
                line: None,
                column: None,
                message: "the HCL parser failed on this input".into(),
            })
        }),
        // No thread to be had (resource limits): parse here; the limits
        // above keep the recursion small.
        Err(_) => parse_inline(text),
    }
}

fn parse_inline(text: &str) -> Result<hcl::Body, HclError> {
    hcl1::parse(text).map_err(|f| HclError {
        line: f.line,
        column: f.column,
        message: one_line(&f.message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hcl1_one_liners_and_deep_nesting() {
        let body =
            parse_body("path \"a\" { capabilities = [\"read\"]  policy = \"read\" }").unwrap();
        assert_eq!(body.blocks().count(), 1);
        let deep = format!("x = {}1{}", "[".repeat(5000), "]".repeat(5000));
        let err = parse_body(&deep).unwrap_err();
        assert!(err.line.is_some());
        assert!(!err.message.contains('\n'));
    }
}
