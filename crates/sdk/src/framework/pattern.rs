//! Path patterns of the framework: literal segments, `{name}` for one
//! segment, `{name*}` for the rest of the path (slashes included), and an
//! optional trailing `/?`. Simpler and faster than regular expressions, and
//! turned into OpenAPI templates (`/role/{name}`) directly.

use std::collections::HashMap;

/// One piece of a [`Pattern`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Literal text that must match exactly.
    Literal(String),
    /// One path segment (no `/`, not empty), captured under the name.
    Segment(String),
    /// The rest of the path (may hold `/`), captured; `bool` says whether
    /// it may be empty (`{name*}`) or not (`{name+}`).
    Rest(String, bool),
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    pieces: Vec<Piece>,
    optional_trailing_slash: bool,
}

/// Values captured from a path by a [`Pattern`].
pub type Captures = HashMap<String, String>;

impl Pattern {
    /// Compiles `source`. Panics on a malformed pattern: patterns are
    /// compile-time constants of the backends, so a bad one is a programming
    /// error caught by every test that builds the backend.
    pub fn new(source: &str) -> Self {
        let (body, optional_trailing_slash) = match source.strip_suffix("/?") {
            Some(b) => (b, true),
            None => (source, false),
        };
        let mut pieces = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('{') {
                #[allow(clippy::expect_used)] // invariant: patterns are constants, see above
                let end = after.find('}').expect("unclosed '{' in pattern");
                let name = &after[..end];
                rest = &after[end + 1..];
                let rest_capture = name
                    .strip_suffix('*')
                    .map(|n| (n, true))
                    .or_else(|| name.strip_suffix('+').map(|n| (n, false)));
                if let Some((n, may_be_empty)) = rest_capture {
                    assert!(
                        !rest.contains('{'),
                        "only a literal suffix may follow {{name*}}"
                    );
                    pieces.push(Piece::Rest(n.to_string(), may_be_empty));
                } else {
                    pieces.push(Piece::Segment(name.to_string()));
                }
            } else {
                let end = rest.find('{').unwrap_or(rest.len());
                pieces.push(Piece::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Pattern {
            source: source.to_string(),
            pieces,
            optional_trailing_slash,
        }
    }

    /// The pattern as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The names captured, in order.
    pub fn capture_names(&self) -> Vec<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Segment(n) | Piece::Rest(n, _) => Some(n.as_str()),
                Piece::Literal(_) => None,
            })
            .collect()
    }

    /// The OpenAPI path template, e.g. `/role/{role_name}/secret-id`.
    pub fn openapi_path(&self) -> String {
        let mut out = String::from("/");
        for p in &self.pieces {
            match p {
                Piece::Literal(l) => out.push_str(l),
                Piece::Segment(n) | Piece::Rest(n, _) => {
                    out.push('{');
                    out.push_str(n);
                    out.push('}');
                }
            }
        }
        out
    }

    /// Matches the whole of `path`, returning the captures.
    pub fn matches(&self, path: &str) -> Option<Captures> {
        let mut caps = Captures::new();
        if self.match_from(0, path, &mut caps) {
            return Some(caps);
        }
        if self.optional_trailing_slash {
            if let Some(p) = path.strip_suffix('/') {
                caps.clear();
                if self.match_from(0, p, &mut caps) {
                    return Some(caps);
                }
            }
        }
        None
    }

    fn match_from(&self, idx: usize, path: &str, caps: &mut Captures) -> bool {
        let Some(piece) = self.pieces.get(idx) else {
            return path.is_empty();
        };
        match piece {
            Piece::Literal(l) => match path.strip_prefix(l.as_str()) {
                Some(rest) => self.match_from(idx + 1, rest, caps),
                None => false,
            },
            Piece::Rest(n, may_be_empty) => {
                // A rest capture may be followed by one literal suffix
                // (`mounts/{path*}/tune`); the capture must not be empty then.
                let captured = match self.pieces.get(idx + 1) {
                    Some(Piece::Literal(suffix)) => match path.strip_suffix(suffix.as_str()) {
                        Some(c) if !c.is_empty() => c,
                        _ => return false,
                    },
                    _ => path,
                };
                if captured.is_empty() && !may_be_empty {
                    return false;
                }
                caps.insert(n.clone(), captured.to_string());
                true
            }
            Piece::Segment(n) => {
                let end = path.find('/').unwrap_or(path.len());
                if end == 0 {
                    return false;
                }
                caps.insert(n.clone(), path[..end].to_string());
                self.match_from(idx + 1, &path[end..], caps)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segment_rest() {
        let p = Pattern::new("role/{name}/secret-id");
        assert_eq!(p.matches("role/web/secret-id").unwrap()["name"], "web");
        assert!(p.matches("role//secret-id").is_none());
        assert!(p.matches("role/a/b/secret-id").is_none());
        assert!(p.matches("role/web/secret-id/").is_none());
        assert_eq!(p.openapi_path(), "/role/{name}/secret-id");

        let rest = Pattern::new("{path*}");
        assert_eq!(rest.matches("a/b/c").unwrap()["path"], "a/b/c");
        assert_eq!(rest.matches("").unwrap()["path"], "");

        let plus = Pattern::new("mounts/{path+}");
        assert!(plus.matches("mounts/").is_none());
        assert_eq!(plus.matches("mounts/a/b").unwrap()["path"], "a/b");

        let tune = Pattern::new("mounts/{path*}/tune");
        assert_eq!(tune.matches("mounts/a/b/tune").unwrap()["path"], "a/b");
        assert!(tune.matches("mounts//tune").is_none());
        assert!(tune.matches("mounts/a/b").is_none());

        let opt = Pattern::new("role/?");
        assert!(opt.matches("role").is_some());
        assert!(opt.matches("role/").is_some());
        assert!(opt.matches("roles").is_none());
    }
}
