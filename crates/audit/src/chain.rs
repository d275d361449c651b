//! The tamper-evident trail (`hash_chain = true`, Strongroom's addition):
//! every entry ends with `"chain":"hmac-sha256:<hex>"`, the device's HMAC
//! of the previous entry's link followed by this entry's JSON without its
//! link. The first link of a device has no predecessor (the empty string);
//! after a restart or a rotation the device continues from its last link.
//!
//! Altering an entry changes its link; removing or reordering entries
//! breaks the next entry's link; only someone with the device's salt (in
//! the barrier) can forge links. The hash is exactly what `sys/audit-hash`
//! computes for the input `previous link + entry`, so a log can be checked
//! by the server that wrote it without the salt ever leaving it.

/// The text that introduces the link at the end of an entry.
const LINK_FIELD: &[u8] = b",\"chain\":\"";

/// The HMAC input of a link: the previous link, then the entry.
pub fn link_input(previous: &str, entry: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(previous.len() + entry.len());
    v.extend_from_slice(previous.as_bytes());
    v.extend_from_slice(entry);
    v
}

/// `entry` (a JSON object's text) with `link` as its last field.
pub fn append_link(entry: &mut Vec<u8>, link: &str) {
    if entry.last() == Some(&b'}') {
        entry.pop();
        entry.extend_from_slice(LINK_FIELD);
        entry.extend_from_slice(link.as_bytes());
        entry.extend_from_slice(b"\"}");
    }
}

/// Splits a chained entry into the entry without its link and the link.
pub fn split_link(line: &[u8]) -> Option<(Vec<u8>, &str)> {
    let body = line.strip_suffix(b"\"}")?;
    let at = body
        .windows(LINK_FIELD.len())
        .rposition(|w| w == LINK_FIELD)?;
    let link = std::str::from_utf8(&body[at + LINK_FIELD.len()..]).ok()?;
    if !link.starts_with(crate::salt::HMAC_PREFIX) || link.contains('"') {
        return None;
    }
    let mut entry = body[..at].to_vec();
    entry.push(b'}');
    Some((entry, link))
}

/// Where a log stops verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {reason}")]
pub struct Broken {
    /// The file.
    pub file: String,
    /// The line number (1-based).
    pub line: usize,
    /// What is wrong: the entry was altered, or an entry before it was
    /// removed or moved, or it carries no link.
    pub reason: String,
}

/// One chained entry of a log, ready to check: where it is, the HMAC
/// input its link must be the hash of (the previous line's stored link,
/// then this entry), and its stored link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The file.
    pub file: String,
    /// The line number (1-based).
    pub line: usize,
    /// What the link must be the hash of.
    pub input: Vec<u8>,
    /// The link the line carries.
    pub link: String,
}

/// Splits chained lines (several files: rotated ones first) into
/// [`Link`]s. Every link depends only on the stored previous link, so the
/// hashes can be computed in any order, or all at once.
///
/// # Errors
/// A line without the device's prefix or without a link.
pub fn links<'a, I>(lines: I, prefix: &str) -> Result<Vec<Link>, Broken>
where
    I: IntoIterator<Item = (&'a str, usize, &'a [u8])>,
{
    let mut previous = String::new();
    let mut out = Vec::new();
    for (file, number, line) in lines {
        let broken = |reason: &str| Broken {
            file: file.to_string(),
            line: number,
            reason: reason.to_string(),
        };
        let body = line
            .strip_prefix(prefix.as_bytes())
            .ok_or_else(|| broken("the line does not start with the device's prefix"))?;
        let (entry, link) =
            split_link(body).ok_or_else(|| broken("the entry carries no chain link"))?;
        out.push(Link {
            file: file.to_string(),
            line: number,
            input: link_input(&previous, &entry),
            link: link.to_string(),
        });
        previous = link.to_string();
    }
    Ok(out)
}

/// Checks `links` against their computed hashes (`hashes[i]` for
/// `links[i]`): answers how many verified.
///
/// # Errors
/// The first link that does not match.
pub fn check(links: &[Link], hashes: &[String]) -> Result<usize, Broken> {
    for (i, (l, want)) in links.iter().zip(hashes).enumerate() {
        if *want != l.link {
            return Err(Broken {
                file: l.file.clone(),
                line: l.line,
                reason: if i == 0 {
                    "the first entry's link does not verify: it was altered, or entries before \
                     it are missing"
                        .into()
                } else {
                    "the link does not verify: this entry was altered, or the entries before it \
                     were removed or reordered"
                        .into()
                },
            });
        }
    }
    Ok(links.len().min(hashes.len()))
}

/// Checks chained lines in order with a hasher at hand (the salt, or a
/// synchronous call to the server): [`links`] then [`check`].
///
/// # Errors
/// The first line that does not verify.
pub fn verify<'a, I, H, E>(lines: I, prefix: &str, mut hash: H) -> Result<usize, Broken>
where
    I: IntoIterator<Item = (&'a str, usize, &'a [u8])>,
    H: FnMut(&[u8]) -> Result<String, E>,
    E: std::fmt::Display,
{
    let links = links(lines, prefix)?;
    let mut hashes = Vec::with_capacity(links.len());
    for l in &links {
        hashes.push(hash(&l.input).map_err(|e| Broken {
            file: l.file.clone(),
            line: l.line,
            reason: format!("computing the link failed: {e}"),
        })?);
    }
    check(&links, &hashes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salt::Salt;

    fn chained(salt: &Salt, entries: &[&str]) -> Vec<Vec<u8>> {
        let mut previous = String::new();
        entries
            .iter()
            .map(|e| {
                let link = salt.hash(&link_input(&previous, e.as_bytes()));
                let mut line = e.as_bytes().to_vec();
                append_link(&mut line, &link);
                previous = link;
                line
            })
            .collect()
    }

    fn check(salt: &Salt, lines: &[Vec<u8>]) -> Result<usize, Broken> {
        verify(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| ("audit.log", i + 1, l.as_slice())),
            "",
            |input| Ok::<_, String>(salt.hash(input)),
        )
    }

    #[test]
    fn a_chain_verifies_and_every_kind_of_tampering_is_found() {
        let salt = Salt::from_bytes(b"device salt");
        let entries = [r#"{"a":1}"#, r#"{"b":"x\"}"}"#, r#"{"c":3}"#, r#"{"d":4}"#];
        let lines = chained(&salt, &entries);
        assert_eq!(
            split_link(&lines[1]).unwrap().0,
            entries[1].as_bytes().to_vec()
        );
        assert_eq!(check(&salt, &lines), Ok(4));

        let mut altered = lines.clone();
        altered[2] = String::from_utf8(altered[2].clone())
            .unwrap()
            .replace("\"c\":3", "\"c\":4")
            .into_bytes();
        assert_eq!(check(&salt, &altered).unwrap_err().line, 3);

        let mut removed = lines.clone();
        removed.remove(1);
        assert_eq!(check(&salt, &removed).unwrap_err().line, 2);

        let mut reordered = lines.clone();
        reordered.swap(1, 2);
        assert_eq!(check(&salt, &reordered).unwrap_err().line, 2);

        let head_removed = lines[1..].to_vec();
        let err = check(&salt, &head_removed).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.reason.contains("first entry"), "{err}");

        let other = Salt::from_bytes(b"another salt");
        assert_eq!(check(&other, &lines).unwrap_err().line, 1);

        let unlinked = vec![b"{\"a\":1}".to_vec()];
        assert!(check(&salt, &unlinked)
            .unwrap_err()
            .reason
            .contains("no chain link"));
    }
}
