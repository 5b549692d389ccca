//! Copies every ```` ```rust ```` code block of the workspace's README.md, verbatim, to
//! `$OUT_DIR/readme_<n>.rs` (n counts from 1 in README order), for `tests/readme.rs` to
//! `include!`. The README is the only copy of that code: edit it there.

use std::path::Path;

fn main() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    println!("cargo::rerun-if-changed={}", readme.display());
    let text = std::fs::read_to_string(&readme).expect("read README.md");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let mut block: Option<String> = None;
    let mut n = 0;
    for line in text.lines() {
        match &mut block {
            None if line.starts_with("```rust") => block = Some(String::new()),
            None => {}
            Some(code) if line.starts_with("```") => {
                n += 1;
                std::fs::write(Path::new(&out).join(format!("readme_{n}.rs")), &code)
                    .expect("write a README block");
                block = None;
            }
            Some(code) => {
                code.push_str(line);
                code.push('\n');
            }
        }
    }
    assert!(block.is_none(), "README.md: a ```rust block is not closed");
    std::fs::write(
        Path::new(&out).join("readme_blocks.rs"),
        format!("/// How many ```rust blocks README.md has.\nconst BLOCKS: usize = {n};\n"),
    )
    .expect("write the block count");
}
