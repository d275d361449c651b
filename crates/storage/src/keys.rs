//! Key validation and the one-level listing scan shared by the backends.

use strongroom_sdk::storage::{list_level, BatchOp, StorageError};

/// Checks that `key` is acceptable to Strongroom's backends: not empty and
/// without a NUL byte. Long keys are allowed, as in Vault.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() || key.contains('\0') {
        return Err(StorageError::InvalidKey(key.to_string()));
    }
    Ok(())
}

/// Validates every key of a batch, before anything is applied.
pub(crate) fn validate_ops(ops: &[BatchOp]) -> Result<(), StorageError> {
    ops.iter().try_for_each(|op| validate_key(op.key()))
}

/// Lists the entries directly below `prefix`, given a way to iterate the keys
/// of the store in order starting at (and including) a given key.
///
/// Instead of walking every key below `prefix`, the scan jumps over each
/// sub-folder as soon as it meets it: after `prefix + "b/..."` it restarts
/// at `prefix + "b0"` (`'0'` is the byte after `'/'`), so the cost is one
/// seek per folder plus one step per direct child, not one per key.
pub(crate) fn scan_level<I, E>(
    prefix: &str,
    mut range_from: impl FnMut(&str) -> Result<I, E>,
) -> Result<Vec<String>, E>
where
    I: Iterator<Item = Result<String, E>>,
{
    let mut found: Vec<String> = Vec::new();
    let mut start = prefix.to_string();
    'seek: loop {
        for key in range_from(&start)? {
            let key = key?;
            let Some(rest) = key.strip_prefix(prefix) else {
                // Past the prefix range: keys are ordered, nothing more below.
                break 'seek;
            };
            if let Some(slash) = rest.find('/') {
                // A sub-folder: record it once and skip everything inside it.
                start = format!("{prefix}{}0", &rest[..slash]);
                found.push(key);
                continue 'seek;
            }
            if !rest.is_empty() {
                found.push(key);
            }
        }
        break;
    }
    Ok(list_level(prefix, found.iter().map(String::as_str)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::convert::Infallible;
    use std::ops::Bound;

    fn scan(keys: &[&str], prefix: &str) -> (Vec<String>, usize) {
        let set: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
        let mut seeks = 0;
        let out = scan_level(prefix, |start| {
            seeks += 1;
            Ok::<_, Infallible>(
                set.range::<str, _>((Bound::Included(start), Bound::Unbounded))
                    .map(|k| Ok(k.clone())),
            )
        })
        .unwrap();
        (out, seeks)
    }

    #[test]
    fn rejects_empty_and_nul_keys_only() {
        assert!(matches!(validate_key(""), Err(StorageError::InvalidKey(_))));
        assert!(matches!(
            validate_key("a\0b"),
            Err(StorageError::InvalidKey(_))
        ));
        assert!(validate_key("a").is_ok());
        assert!(validate_key(&"k".repeat(10_000)).is_ok());
    }

    #[test]
    fn scan_matches_list_level_and_skips_folders() {
        let keys = [
            "a", "b.", "b/1", "b/2", "b/3/x", "b0", "c/d/e", "c/d/f", "c/z", "d",
        ];
        let (top, seeks) = scan(&keys, "");
        assert_eq!(top, vec!["a", "b.", "b/", "b0", "c/", "d"]);
        // One initial seek plus one per folder met ("b/" and "c/").
        assert_eq!(seeks, 3);
        assert_eq!(scan(&keys, "b/").0, vec!["1", "2", "3/"]);
        assert_eq!(scan(&keys, "c/").0, vec!["d/", "z"]);
        assert!(scan(&keys, "zz/").0.is_empty());
        // The prefix itself stored as a key is not an entry below it.
        assert_eq!(scan(&["p/", "p/q"], "p/").0, vec!["q"]);
    }
}
