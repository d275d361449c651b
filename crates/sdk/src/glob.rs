//! The `*` globs of OpenBao's policies, role bindings and alias names.

/// Glob matching as OpenBao's policy and alias globs do it: `*` matches any
/// run of characters (including none); everything else is literal.
pub fn glob_match(pattern: &str, subject: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == subject;
    };
    let rest: Vec<&str> = parts.collect();
    let Some((last, middle)) = rest.split_last() else {
        return pattern == subject;
    };
    let Some(mut tail) = subject.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match tail.find(part) {
            Some(i) => tail = &tail[i + part.len()..],
            None => return false,
        }
    }
    tail.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn star_matches_any_run() {
        assert!(glob_match("*", ""));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a*b*c", "axbyc"));
        assert!(!glob_match("a*c", "ab"));
        assert!(!glob_match("abc", "abcd"));
    }
}
