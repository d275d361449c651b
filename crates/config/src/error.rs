//! The configuration error: every way a server config can be rejected.
//!
//! Every message is a single line (user-controlled text is quoted with Rust's
//! `{:?}` escaping, parser messages are flattened) so that it can be printed
//! or logged as one record. Values of keys are never echoed except where the
//! value is a short enumerated word or a duration: a future storage block may
//! hold a password in its connection URL.

use std::path::PathBuf;

use crate::Format;

/// Why a server configuration was rejected.
///
/// [`load`](crate::load) wraps every problem found in the file's text in
/// [`ConfigError::InFile`], so its message always names the file;
/// [`ConfigError::root`] gives the underlying problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read (missing, unreadable, a directory).
    ///
    /// The cause is part of the message and deliberately not an error
    /// `source`: printers that walk the source chain (anyhow's `{:#}`)
    /// would print it twice.
    #[error("cannot read config file {path:?}: {cause}")]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// What the operating system answered.
        cause: std::io::Error,
    },
    /// A problem with the contents of a config file.
    /// (Its problem is part of the message, not a `source`: see `Read`.)
    #[error("error in config file {path:?}: {problem}")]
    InFile {
        /// The file whose contents are wrong.
        path: PathBuf,
        /// The problem itself.
        problem: Box<ConfigError>,
    },
    /// The text is not valid HCL or JSON.
    #[error("invalid {format} syntax{}: {message}", location(*.line, *.column))]
    Syntax {
        /// Which syntax the text was parsed as.
        format: Format,
        /// 1-based line of the problem, when the parser reports it.
        line: Option<usize>,
        /// 1-based column of the problem, when the parser reports it.
        column: Option<usize>,
        /// The parser's explanation, flattened to one line.
        message: String,
    },
    /// Keys that Strongroom does not know (often a typo, `listner`): every
    /// one of them in the block, in the file's order.
    #[error("unknown {} {} in {context}", if .keys.len() == 1 { "key" } else { "keys" }, quoted(.keys))]
    UnknownKey {
        /// The keys as written.
        keys: Vec<String>,
        /// Where it was found: `config file`, `storage "redb"`, `listener #1 ("tcp")`.
        context: String,
    },
    /// A required key is absent.
    #[error("{context} is missing {key:?}{}", hint_suffix(.hint))]
    MissingKey {
        /// The key that is required.
        key: String,
        /// The block that needs it.
        context: String,
        /// Why it is required, when that is not obvious (may be empty).
        hint: String,
    },
    /// A key has a value of the wrong type or form.
    #[error("invalid value for {key:?} in {context}: {reason}")]
    InvalidValue {
        /// The key whose value is wrong.
        key: String,
        /// Where the key was found.
        context: String,
        /// What was expected instead.
        reason: String,
    },
    /// `storage` or `listener` is not written as labelled blocks.
    #[error("{key:?} must be written as labelled blocks, like {key} \"<type>\" {{ ... }}")]
    NotABlock {
        /// `storage`, `backend` or `listener`.
        key: String,
    },
    /// No `storage` block.
    #[error("no storage configured: the config file needs exactly one storage block, like storage \"redb\" {{ path = \"...\" }}")]
    NoStorage,
    /// More than one `storage` block.
    #[error("only one storage block is permitted, found {}: {}", .kinds.len(), quoted_list(.kinds))]
    MultipleStorage {
        /// The types of the storage blocks found, in file order.
        kinds: Vec<String>,
    },
    /// A migration config without exactly one `storage_source` (or
    /// `storage_destination`) block (OpenBao's wording).
    #[error("exactly one {stanza:?} block is required, found {found}")]
    MigrationStanza {
        /// `storage_source` or `storage_destination`.
        stanza: String,
        /// How many such blocks the file has.
        found: usize,
    },
    /// A `storage` block of a type Strongroom does not implement.
    #[error("unknown storage type {kind:?} (supported: \"inmem\", \"redb\", \"postgresql\")")]
    UnknownStorage {
        /// The block's label as written.
        kind: String,
    },
    /// A `listener` block of a type other than `tcp`.
    #[error("unknown listener type {kind:?} (supported: \"tcp\")")]
    UnknownListener {
        /// The block's label as written.
        kind: String,
    },
    /// The effective `default_lease_ttl` exceeds the effective `max_lease_ttl`
    /// (both default to 768h when unset, as in Vault).
    #[error(
        "default_lease_ttl ({default_secs}s) cannot be larger than max_lease_ttl ({max_secs}s)"
    )]
    LeaseTtl {
        /// The effective default lease TTL, in seconds.
        default_secs: u64,
        /// The effective maximum lease TTL, in seconds.
        max_secs: u64,
    },
}

impl ConfigError {
    /// The underlying problem, looking through [`ConfigError::InFile`].
    pub fn root(&self) -> &ConfigError {
        match self {
            ConfigError::InFile { problem, .. } => problem.root(),
            other => other,
        }
    }
}

fn location(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!(" ({hint})")
    }
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collapses all whitespace runs (including newlines) to single spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `"a", "b"`: each key quoted with Rust's escaping.
fn quoted(keys: &[String]) -> String {
    keys.iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
