//! Rebuilds the crate when the web client changes: `include_dir!` (web.rs) embeds
//! `web-client/`, but cargo does not see the files a macro reads.

fn main() {
    println!("cargo:rerun-if-changed=../web-client");
}
