//! Command line of `tern-pack`. See `tern-pack --help`.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use tern_pack::{cpio, elf, image};

const USAGE: &str = "\
usage:
  tern-pack image <ELF> -o <OUT.bin>
      flatten the PT_LOAD segments of ELF into a raw image
  tern-pack bundle -o <OUT.cpio> <NAME>=<FILE>...
      pack files into a cpio newc archive under the given names";

type Error = Box<dyn std::error::Error>;

/// Splits `args` into the `-o` value and the remaining positional arguments.
fn output_and_rest(args: &[String]) -> Result<(PathBuf, Vec<String>), Error> {
    let mut out = None;
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-o" || a == "--output" {
            out = Some(PathBuf::from(it.next().ok_or("-o needs a path")?));
        } else if a.starts_with('-') {
            return Err(format!("unknown option {a}").into());
        } else {
            rest.push(a.clone());
        }
    }
    Ok((out.ok_or("missing -o <output>")?, rest))
}

fn read(path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}").into())
}

fn write(path: &PathBuf, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()).into())
}

fn cmd_image(args: &[String]) -> Result<(), Error> {
    let (out, rest) = output_and_rest(args)?;
    let [input] = rest.as_slice() else {
        return Err("image takes exactly one ELF".into());
    };
    let bytes = read(input)?;
    let parsed = elf::parse(&bytes).map_err(|e| format!("{input}: {e}"))?;
    if !parsed.is_aarch64() {
        return Err(format!("{input}: not an AArch64 ELF").into());
    }
    let img = image::flatten(&parsed).map_err(|e| format!("{input}: {e}"))?;
    // A raw hyp.bin is only bootable if the linker script put the Linux arm64
    // Image header first (magic "ARM\x64" at 0x38); warn, since other ELFs may
    // legitimately be flattened too.
    if img.bytes.get(0x38..0x3c) != Some(b"ARM\x64") {
        eprintln!("tern-pack: warning: {input} has no arm64 Image header at its start");
    }
    write(&out, &img.bytes)?;
    println!(
        "tern-pack: {} ({} bytes, linked at {:#x}, entry {:#x})",
        out.display(),
        img.bytes.len(),
        img.base,
        parsed.entry
    );
    Ok(())
}

fn cmd_bundle(args: &[String]) -> Result<(), Error> {
    let (out, rest) = output_and_rest(args)?;
    let mut files = Vec::new();
    for spec in &rest {
        let (name, path) = spec
            .split_once('=')
            .ok_or_else(|| format!("{spec}: expected NAME=FILE"))?;
        files.push((name.to_owned(), read(path)?));
    }
    let entries: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let archive = cpio::write(&entries)?;
    write(&out, &archive)?;
    println!(
        "tern-pack: {} ({} modules, {} bytes)",
        out.display(),
        entries.len(),
        archive.len()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("image") => cmd_image(&args[1..]),
        Some("bundle") => cmd_bundle(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tern-pack: {e}");
            ExitCode::from(2)
        }
    }
}
