//! Host tests of pages and copy batches.

extern crate std;
use super::copy::*;
use super::*;
use tern_abi::grant::CopyFlags;

#[test]
fn page_read_write_any_offset() {
    let p = Page::new().unwrap();
    assert_eq!(p.ipa() % PAGE_SIZE, 0);
    let data: std::vec::Vec<u8> = (0..100u8).collect();
    p.write(5, &data).unwrap();
    let mut back = [0u8; 100];
    p.read(5, &mut back).unwrap();
    assert_eq!(&back[..], &data[..]);
    // Neighbours untouched, little-endian words.
    assert_eq!(p.as_bytes()[4], 0);
    assert_eq!(p.as_bytes()[105], 0);
    assert_eq!(p.words()[1].load(Ordering::Relaxed) & 0xff, 3);
    assert_eq!(p.write(4090, &[0; 7]), Err(Error::BadAddress));
    assert_eq!(p.read(usize::MAX, &mut [0; 2]), Err(Error::BadAddress));
    p.write(4088, &[0xaa; 8]).unwrap();
    assert_eq!(
        p.words()[511].load(Ordering::Relaxed),
        u64::MAX / 0xff * 0xaa
    );
}

#[test]
fn aligned_copies_take_whole_words_and_finish_the_tail() {
    let p = Page::new().unwrap();
    let data: std::vec::Vec<u8> = (0..=250u8).collect();
    for at in [0, 8, 4096 - 256] {
        p.write(at, &data).unwrap();
        let mut back = [0u8; 251];
        p.read(at, &mut back).unwrap();
        assert_eq!(back, data[..], "offset {at}");
    }
    // The tail of an aligned write leaves the rest of its last word alone.
    p.write(16, &[0u8; 24]).unwrap();
    p.write(16, &[1u8; 11]).unwrap();
    assert_eq!(p.words()[2].load(Ordering::Relaxed), 0x0101_0101_0101_0101);
    assert_eq!(p.words()[3].load(Ordering::Relaxed), 0x01_0101);
}

#[test]
fn copy_batch_splits_at_page_boundaries() {
    let mut buf = std::vec![0u8; 3 * PAGE_BYTES];
    let start = (PAGE_BYTES - (ipa_of(&buf[0]) % PAGE_SIZE) as usize) + PAGE_BYTES - 100;
    let g = GrantPtr {
        domid: DomainId(2),
        gref: GrantRef(7),
        offset: 10,
    };
    let mut b = CopyBatch::new();
    let i = b.from_grant(g, &mut buf[start..start + 300]).unwrap();
    assert_eq!(i, 0);
    assert_eq!(b.ops.len(), 2);
    assert_eq!((b.ops[0].len, b.ops[1].len), (100, 200));
    assert_eq!(b.ops[1].src.offset, 110);
    assert_eq!(b.ops[1].dst.offset % PAGE_SIZE, 0);
    assert_eq!(b.ops[0].flags, CopyFlags::SRC_GREF.bits());
    let far = GrantPtr { offset: 4000, ..g };
    assert_eq!(b.to_grant(&[0; 200], far), Err(Error::BadAddress));
    b.ops[1].status = Error::PermissionDenied.raw() as i32;
    assert_eq!(b.status(0), Err(Error::PermissionDenied));
    assert_eq!(b.len(), 1);
}
