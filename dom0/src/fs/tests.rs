//! The guest library on real ext4 images, made with `mke2fs -d` as
//! `scripts/build.sh` makes `library.img` (e2fsprogs: `scripts/deps.sh`
//! installs it), read through [`disk::Sectors`] in whole sectors as dom0
//! reads its disk.

extern crate std;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::disk::{Sectors, choose, has_ext_magic};
use super::*;
use crate::blkback::disk::SECTOR;

/// An image's bytes: a pattern that differs at every offset, so a read from
/// the wrong place shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

const DEMO: &str = "name = \"demo\"\nmemory = 4\nimage = \"demo-guest\"\n";
const ABSOLUTE: &str = "name = \"abs\"\nmemory = 4\nimage = \"/images/abs-guest\"\n";
const NO_IMAGE: &str = "name = \"lost\"\nmemory = 4\nimage = \"missing-guest\"\n";

fn mke2fs() -> PathBuf {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(["/sbin".into(), "/usr/sbin".into()])
        .map(|d| d.join("mke2fs"))
        .find(|p| p.exists());
    found.expect("mke2fs not found (scripts/deps.sh installs e2fsprogs)")
}

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(root: &Path, path: &str, bytes: &[u8]) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// An ext4 image (as `scripts/build.sh` makes the library) of a tree with
/// configurations, images and things that are neither.
fn image(name: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(alloc::format!("tern-fs-{}-{name}", std::process::id()));
    let scratch = Scratch(dir.clone());
    let tree = dir.join("tree");
    write(&tree, "guests/demo.toml", DEMO.as_bytes());
    write(&tree, "guests/demo-guest", &pattern(300 * 1024 + 17));
    write(&tree, "guests/abs.toml", ABSOLUTE.as_bytes());
    write(&tree, "images/abs-guest", b"\x7fELF");
    write(&tree, "guests/lost.toml", NO_IMAGE.as_bytes());
    write(&tree, "guests/broken.toml", b"name = \n");
    write(&tree, "guests/README", b"not a configuration\n");
    std::fs::create_dir_all(tree.join("guests/old.toml")).unwrap();
    let img = dir.join("lib.img");
    let status = Command::new(mke2fs())
        .args([
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            "4096",
            "-L",
            "tern-test",
            "-d",
        ])
        .arg(&tree)
        .arg(&img)
        .arg("4M")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mke2fs runs");
    assert!(status.success(), "mke2fs failed");
    let bytes = std::fs::read(&img).unwrap();
    drop(scratch);
    bytes
}

/// The library on `bytes`, read only in whole, aligned sectors.
fn library(bytes: Vec<u8>) -> Library {
    let reader = Sectors::new(move |sector, buf: &mut [u8]| {
        assert!(!buf.is_empty() && buf.len().is_multiple_of(SECTOR));
        let at = sector as usize * SECTOR;
        let src = bytes.get(at..at + buf.len()).ok_or("beyond the disk")?;
        buf.copy_from_slice(src);
        Ok(())
    });
    Library::load(Box::new(reader)).unwrap()
}

fn names(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| alloc::format!("{e}")).collect()
}

#[test]
fn lists_directories_sorted_and_files_alone() {
    let lib = library(image("list"));
    assert_eq!(lib.label(), "tern-test");
    let root = lib.list("/").unwrap();
    let root: Vec<&str> = root.iter().map(|e| e.name.as_str()).collect();
    assert!(
        root.contains(&"guests") && root.contains(&"images"),
        "{root:?}"
    );
    assert!(!root.contains(&".") && !root.contains(&".."));
    let file = |name: &str, size: usize| Entry {
        name: name.into(),
        kind: Kind::File,
        size: size as u64,
    };
    let dir = Entry {
        name: "old.toml".into(),
        kind: Kind::Dir,
        size: 4096,
    };
    let guests = lib.list("/guests").unwrap();
    assert_eq!(
        guests,
        [
            file("README", 20),
            file("abs.toml", ABSOLUTE.len()),
            file("broken.toml", 8),
            file("demo-guest", 300 * 1024 + 17),
            file("demo.toml", DEMO.len()),
            file("lost.toml", NO_IMAGE.len()),
            dir,
        ]
    );
    assert_eq!(
        names(&guests[3..]),
        [
            "    307217  demo-guest",
            "        46  demo.toml",
            "        49  lost.toml",
            "     <dir>  old.toml/"
        ]
    );
    assert_eq!(
        names(&lib.list("/guests/demo.toml").unwrap()),
        ["        46  demo.toml"]
    );
    assert_eq!(
        lib.list("/nothing").unwrap_err().to_string(),
        "/nothing: no such file or directory"
    );
}

#[test]
fn reads_a_configuration_and_its_image() {
    let lib = library(image("read"));
    let cfg = lib.config("/guests/demo.toml").unwrap();
    assert_eq!(
        (cfg.name.as_str(), cfg.image.as_str()),
        ("demo", "demo-guest")
    );
    // Several blocks and a ragged end, exactly.
    assert_eq!(
        lib.image("/guests/demo.toml", &cfg).unwrap(),
        pattern(300 * 1024 + 17)
    );
    let abs = lib.config("/guests/abs.toml").unwrap();
    assert_eq!(lib.image("/guests/abs.toml", &abs).unwrap(), b"\x7fELF");
}

#[test]
fn each_failure_is_one_line() {
    let lib = library(image("errors"));
    let err = |r: Result<DomainConfig, FsError>| r.unwrap_err().to_string();
    assert_eq!(
        err(lib.config("/guests/nope.toml")),
        "/guests/nope.toml: no such file or directory"
    );
    assert_eq!(
        err(lib.config("/guests/README")),
        "/guests/README: not a domain configuration (*.toml)"
    );
    assert_eq!(
        err(lib.config("/guests/nope")),
        "/guests/nope: no such file or directory"
    );
    assert_eq!(
        err(lib.config("/guests/old.toml")),
        "/guests/old.toml: is a directory"
    );
    assert!(
        err(lib.config("/guests/broken.toml")).starts_with("/guests/broken.toml: line 1"),
        "{}",
        err(lib.config("/guests/broken.toml"))
    );
    let lost = lib.config("/guests/lost.toml").unwrap();
    assert_eq!(
        lib.image("/guests/lost.toml", &lost)
            .unwrap_err()
            .to_string(),
        "/guests/missing-guest: no such file or directory"
    );
    assert_eq!(
        lib.domain("/guests/lost.toml").unwrap_err(),
        "lost: image /guests/missing-guest: no such file or directory"
    );
    let (cfg, image) = lib.domain("/guests/abs.toml").unwrap();
    assert_eq!((cfg.name.as_str(), &image[..]), ("abs", &b"\x7fELF"[..]));
    assert_eq!(
        lib.read("/guests/demo-guest", 1024).unwrap_err(),
        FsError::TooLarge("/guests/demo-guest".into(), 1024)
    );
    assert_eq!(
        lib.list("/guests/demo.toml/x").unwrap_err(),
        FsError::NotADirectory("/guests/demo.toml/x".into())
    );
    for e in [FsError::NoLibrary, FsError::Unreadable("x".into())] {
        assert!(!e.to_string().contains('\n'));
    }
}

#[test]
fn a_disk_without_a_filesystem_is_not_a_library() {
    let zeros = alloc::vec![0u8; 64 * 1024];
    assert!(!has_ext_magic(&zeros));
    let reader = Sectors::new(move |sector, buf: &mut [u8]| {
        let at = sector as usize * SECTOR;
        buf.copy_from_slice(&zeros[at..at + buf.len()]);
        Ok(())
    });
    assert!(matches!(
        Library::load(Box::new(reader)),
        Err(FsError::Unreadable(_))
    ));
    assert!(has_ext_magic(&image("magic")));
    assert!(!has_ext_magic(&[0u8; 1000]));
}

#[test]
fn sector_reads_cover_unaligned_ranges() {
    use ext4_view::Ext4Read;
    let disk = pattern(8 * SECTOR);
    let seen = std::rc::Rc::new(core::cell::RefCell::new(Vec::new()));
    let log = seen.clone();
    let src = disk.clone();
    let mut r = Sectors::new(move |sector, buf: &mut [u8]| {
        log.borrow_mut().push((sector, buf.len() / SECTOR));
        let at = sector as usize * SECTOR;
        buf.copy_from_slice(&src[at..at + buf.len()]);
        Ok(())
    });
    let mut dst = [0u8; 600];
    r.read(500, &mut dst).unwrap();
    assert_eq!(dst[..], disk[500..1100]);
    // Sector 0 (bytes 500..512), 1 and 2 (to byte 1100).
    assert_eq!(*seen.borrow(), [(0, 3)]);
    r.read(1024, &mut dst[..512]).unwrap();
    assert_eq!(dst[..512], disk[1024..1536]);
    assert_eq!(seen.borrow()[1], (2, 1));
    r.read(0, &mut []).unwrap();
    assert_eq!(seen.borrow().len(), 2);
    let mut failing = Sectors::new(|_, _: &mut [u8]| Err("device: broken".into()));
    assert_eq!(
        failing.read(0, &mut dst).unwrap_err().to_string(),
        "device: broken"
    );
}

#[test]
fn the_library_disk_is_asked_for_or_the_first_unused_ext_disk() {
    // vda: a domain's, with a filesystem; vdb: none; mmc0: a filesystem.
    let disks: Vec<(String, bool)> = [("vda", true), ("vdb", false), ("mmc0", true)]
        .map(|(n, m)| (n.into(), m))
        .into();
    let some = |n: &str| Ok(Some(String::from(n)));
    assert_eq!(choose(None, &disks, &["vda"]), some("mmc0"));
    assert_eq!(choose(None, &disks, &[]), some("vda"));
    assert_eq!(choose(None, &disks, &["vda", "mmc0"]), Ok(None));
    assert_eq!(choose(Some("vda"), &disks, &["vda"]), some("vda"));
    assert_eq!(choose(Some("none"), &disks, &[]), Ok(None));
    assert_eq!(
        choose(Some("vdb"), &disks, &[]),
        Err("dom0.fs=vdb: no ext2/3/4 filesystem on it".into())
    );
    assert_eq!(
        choose(Some("vdd"), &disks, &[]),
        Err("dom0.fs=vdd: no such disk".into())
    );
}
