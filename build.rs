// `sqlx::migrate!` embeds migrations/ at compile time; a new migration file
// must rebuild the crate (what `sqlx migrate build-script` writes).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
