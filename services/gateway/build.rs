//! Compiles proto/ into the gateway's service code and the descriptor set
//! that gRPC reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing reads the
    // environment concurrently.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("blockhub_descriptor.bin"))
        .compile_protos(
            &[
                "../../proto/blockhub/v1/lookup.proto",
                "../../proto/blockhub/v1/office.proto",
                "../../proto/blockhub/v1/changes.proto",
                "../../proto/blockhub/v1/health.proto",
            ],
            &["../../proto"],
        )?;
    println!("cargo:rerun-if-changed=../../proto");
    Ok(())
}
