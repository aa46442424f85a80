//! Rewrites `schemas/json/` from the Rust types: `cargo run -p backup-schemas --example gen-json-schema`.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("json");
    if root.exists() {
        std::fs::remove_dir_all(&root)?;
    }
    for (name, text) in backup_schemas::json_schema::files() {
        let path = root.join(&name);
        std::fs::create_dir_all(path.parent().expect("file has a parent"))?;
        std::fs::write(&path, text)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
