//! No input may panic the parser: mutated and truncated versions of valid
//! configs, random bytes, and pathological nesting all end in `Ok` or in a
//! one-line `ConfigError`. (The fuzz target in `fuzz/` explores further.)

use strongroom_config::{parse_str, Format};

const HCL: &str = r#"storage "redb" { path = "/var/lib/strongroom/data.redb" }
listener "tcp" { address = "127.0.0.1:8200"  tls_disable = true  tls_cert_file = "c.pem"  tls_key_file = "k.pem"  max_request_size = 33554432 }
listener "tcp" {
  address = "0.0.0.0:8201", tls_cert_file = "c.pem", tls_key_file = "k.pem"
}
api_addr = "https://127.0.0.1:8200"  cluster_name = "c1"  default_lease_ttl = "1h"  max_lease_ttl = "768h"
log_level = "info"  disable_mlock = true  ui = true
"#;

const JSON: &str = r#"{"storage": {"redb": {"path": "/var/lib/strongroom/data.redb"}},
 "listener": [{"tcp": {"address": "127.0.0.1:8200", "tls_disable": "1", "max_request_size": -1}},
              {"tcp": [{"address": "0.0.0.0:8201", "tls_cert_file": "c.pem", "tls_key_file": "k.pem"}]}],
 "api_addr": "https://127.0.0.1:8200", "cluster_name": "c1", "default_lease_ttl": 3600,
 "max_lease_ttl": "768h", "log_level": "INFO", "disable_mlock": true, "ui": "true"}"#;

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Parses `text` both ways; a panic fails the test, and every error must
/// render as a single line.
fn check(text: &str) {
    for format in [Format::Hcl, Format::Json] {
        if let Err(e) = parse_str(text, format) {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error {msg:?} for {text:?}");
            assert!(!msg.is_empty(), "empty error for {text:?}");
        }
    }
}

fn char_boundaries(text: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=text.len()).filter(|i| text.is_char_boundary(*i))
}

#[test]
fn the_seed_configs_are_valid() {
    // Otherwise the mutations below would only explore the error paths.
    let hcl = parse_str(HCL, Format::Hcl).expect("seed HCL");
    let json = parse_str(JSON, Format::Json).expect("seed JSON");
    assert_eq!(hcl.listeners.len(), 2);
    assert_eq!(json.listeners.len(), 2);
}

#[test]
fn every_truncation_and_deletion_is_handled() {
    for seed in [HCL, JSON] {
        for end in char_boundaries(seed) {
            check(&seed[..end]);
            check(&seed[end..]);
        }
        let chars: Vec<char> = seed.chars().collect();
        for i in 0..chars.len() {
            let mut v = chars.clone();
            v.remove(i);
            check(&v.iter().collect::<String>());
        }
    }
}

#[test]
fn random_mutations_are_handled() {
    const ALPHABET: &[char] = &[
        '{', '}', '[', ']', '(', ')', '"', '=', ',', ':', '#', '/', '*', '\\', '\n', ' ', '$', '<',
        '-', '.', '0', '9', 'a', 'é', '\u{0}', '\u{feff}', '😀',
    ];
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    for round in 0..3000 {
        let seed = if round % 2 == 0 { HCL } else { JSON };
        let mut chars: Vec<char> = seed.chars().collect();
        for _ in 0..=rng.below(6) {
            let at = rng.below(chars.len() + 1);
            let c = ALPHABET[rng.below(ALPHABET.len())];
            match rng.below(4) {
                0 if at < chars.len() => chars[at] = c,
                1 if at < chars.len() => {
                    chars.remove(at);
                }
                2 => {
                    // Duplicate a slice: repeated blocks, keys and braces.
                    let from = rng.below(chars.len());
                    let to = (from + rng.below(40)).min(chars.len());
                    let piece: Vec<char> = chars[from..to].to_vec();
                    let at = at.min(chars.len());
                    chars.splice(at..at, piece);
                }
                _ => chars.insert(at.min(chars.len()), c),
            }
        }
        check(&chars.iter().collect::<String>());
    }
}

#[test]
fn random_bytes_are_handled() {
    let mut rng = Rng(0xdead_beef_1234_5678);
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    for depth in [200, 5_000] {
        check(&format!("a = {}", "[".repeat(depth)));
        check(&format!("a = {}1{}", "[".repeat(depth), "]".repeat(depth)));
        check(&format!("a = {}", "{".repeat(depth)));
        check(&"b { ".repeat(depth));
        check(&format!("{}{}", "b {\n".repeat(depth), "}\n".repeat(depth)));
        check(&format!("a = {}1", "(".repeat(depth)));
        check(&format!("a = {}", "-".repeat(depth)));
        check(&"{\"a\": ".repeat(depth));
        check(&"[".repeat(depth));
    }
}

#[test]
fn one_line_blocks_that_need_many_repairs_stay_bounded() {
    // Hundreds of attributes on one line exceed the repair budget: the
    // parser must give up with an error rather than loop.
    let attrs = "a = 1  ".repeat(2_000);
    check(&format!("storage \"inmem\" {{ {attrs} }}"));
    check(&",".repeat(2_000));
}
