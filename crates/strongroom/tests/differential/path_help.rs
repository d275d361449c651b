//! Differential tests of `path-help` (`?help=1`) on a mount root: the
//! backend's own description and its paths, as OpenBao answers it (the
//! wording of the texts is each server's own).

use crate::differences;
use strongroom_test::diff::on_both;
use strongroom_test::server::{Call, Reply};

fn help_text(r: &Reply) -> &str {
    r.body["help"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn help_on_a_mount_root_describes_the_backend_and_lists_its_paths() {
    let mut p = differences::pair();
    for (root, paths) in [
        (
            "secret/",
            &["config", "data/", "metadata/", "destroy/", "undelete/"][..],
        ),
        (
            "sys/",
            &["mounts", "policy", "generate-root-token/attempt", "remount"][..],
        ),
        ("auth/token/", &["create", "lookup", "roles"][..]),
    ] {
        let r = p
            .check(Call::get(&format!("{root}?help=1")), differences::HELP)
            .await;
        p.expect_status(&r, 200, &format!("{root}?help=1"));
        on_both(&mut p, &r, &format!("{root}: description and paths"), |r| {
            let t = help_text(r);
            t.starts_with("## DESCRIPTION\n\n")
                && t.contains("## PATHS")
                && paths.iter().all(|p| t.contains(p))
                && !t.contains("Matching Route")
                && !t.contains("Not a KV v2 path")
        });
    }
    p.finish();
}
