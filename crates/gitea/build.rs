//! Compiles Gitea's runner protocol (`proto/runner/v1`, `proto/ping/v1`) into Rust: protox
//! parses the `.proto` files into a descriptor set (no `protoc` needed), prost-build turns it
//! into message types, pbjson-build adds proto3-JSON `serde` impls for `application/json`.
//! Well-known types (`Struct`, `Timestamp`) come from `pbjson-types`, prost messages that
//! also speak proto3 JSON.

use std::path::PathBuf;

use protox::prost::Message;

const PROTOS: [&str; 4] = [
    "proto/runner/v1/messages.proto",
    "proto/runner/v1/services.proto",
    "proto/ping/v1/messages.proto",
    "proto/ping/v1/services.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let fds = protox::compile(PROTOS, ["proto"])?;
    let encoded = fds.encode_to_vec();

    prost_build::Config::new()
        .btree_map(["."])
        .compile_well_known_types()
        .extern_path(".google.protobuf", "::pbjson_types")
        .out_dir(&out_dir)
        .compile_fds(fds)?;

    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .btree_map(["."])
        .out_dir(&out_dir)
        .build(&[".runner.v1", ".ping.v1"])?;
    Ok(())
}
