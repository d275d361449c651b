//! The composition of the `strongroom` binary as a library: its command
//! line ([`cli`]), the storage migration (`operator migrate`, [`migrate`]),
//! the audit log check (`audit verify`, [`audit_verify`]),
//! the server it runs ([`server`]) with its HA coordinator ([`ha`]),
//! including the
//! [`server::registry`] of backends it mounts. The binary (`main.rs`) is a
//! thin wrapper over this crate, and in-process tests build their cores
//! from the same registry, so they exercise exactly what the binary serves.
#![forbid(unsafe_code)]

pub mod audit_verify;
pub mod cli;
pub mod ha;
pub mod migrate;
pub mod server;

pub use server::registry;

#[cfg(test)]
mod tests {
    /// One supported Rust version, stated alike in Cargo.toml
    /// (`rust-version`), rust-toolchain.toml and README.
    #[test]
    fn the_supported_rust_version_is_stated_alike_everywhere() {
        let version = env!("CARGO_PKG_RUST_VERSION");
        assert!(!version.is_empty(), "Cargo.toml has no rust-version");
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let read = |name: &str| {
            std::fs::read_to_string(format!("{root}/{name}"))
                .unwrap_or_else(|e| panic!("reading {name}: {e}"))
        };
        let phrase = format!("Rust {version}");
        for file in ["README.md", "rust-toolchain.toml"] {
            assert!(
                read(file).contains(&phrase),
                "{file} does not say {phrase:?}"
            );
        }
    }
}
