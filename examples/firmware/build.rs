//! Puts the memory layout of the board each target runs on where the
//! runtime crate's linker script finds it.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let target = env::var("TARGET").unwrap_or_default();
    let layout = if target.starts_with("thumbv6m") {
        // micro:bit (nRF51822): 256 KiB flash, 16 KiB RAM.
        "MEMORY {\n  FLASH : ORIGIN = 0x00000000, LENGTH = 256K\n  RAM : ORIGIN = 0x20000000, LENGTH = 16K\n}\n"
    } else if target.starts_with("thumbv7em") {
        // MPS2 AN386: 4 MiB SSRAM1 at 0 (as flash), 4 MiB SSRAM2/3 at 0x20000000.
        "MEMORY {\n  FLASH : ORIGIN = 0x00000000, LENGTH = 4M\n  RAM : ORIGIN = 0x20000000, LENGTH = 4M\n}\n"
    } else if target.starts_with("riscv32") {
        // A small RISC-V microcontroller: 256 KiB flash, 64 KiB RAM.
        "MEMORY {\n  FLASH : ORIGIN = 0x20000000, LENGTH = 256K\n  RAM : ORIGIN = 0x80000000, LENGTH = 64K\n}\n\
         REGION_ALIAS(\"REGION_TEXT\", FLASH);\nREGION_ALIAS(\"REGION_RODATA\", FLASH);\n\
         REGION_ALIAS(\"REGION_DATA\", RAM);\nREGION_ALIAS(\"REGION_BSS\", RAM);\n\
         REGION_ALIAS(\"REGION_HEAP\", RAM);\nREGION_ALIAS(\"REGION_STACK\", RAM);\n"
    } else {
        ""
    };
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), layout).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
