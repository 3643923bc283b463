//! `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know that a
//! *new* file in the folder changes the crate: without this, adding a migration leaves an
//! incremental build with the old list (and a database that never gets the new table).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
