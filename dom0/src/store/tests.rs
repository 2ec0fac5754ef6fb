//! Host tests of the store server: permissions, watches, quotas, the
//! listing, and the protocol over a real shared page, including hostile
//! clients (garbage messages, impossible indices, unread answers).

extern crate std;

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use tern_abi::store::{
    MsgAssembler, STORE_NODE_QUOTA, STORE_OUTPUT_MAX, STORE_PAYLOAD_MAX, STORE_VALUE_MAX,
    STORE_WATCH_QUOTA, SharedStorePage, StoreEndpoint, StoreError, StoreMsgHeader, StoreMsgType,
};
use zerocopy::IntoBytes;

use super::Server;
use super::listing;
use super::tree::DOM0;

use StoreMsgType as T;

fn req(s: &mut Server, dom: u32, ty: T, body: &[u8]) -> Result<Vec<u8>, StoreError> {
    s.request(dom, ty, body)
}

fn read(s: &mut Server, dom: u32, path: &str) -> Result<Vec<u8>, StoreError> {
    req(s, dom, T::Read, &[path.as_bytes(), b"\0"].concat())
}

fn write(s: &mut Server, dom: u32, path: &str, value: &str) -> Result<Vec<u8>, StoreError> {
    req(
        s,
        dom,
        T::Write,
        &[path.as_bytes(), b"\0", value.as_bytes()].concat(),
    )
}

/// The client side of one domain's page, as a guest drives it.
struct Client {
    page: *const SharedStorePage,
    ep: StoreEndpoint,
    asm: Box<MsgAssembler>,
    next: u32,
}

impl Client {
    fn page(&self) -> &SharedStorePage {
        // SAFETY: the server owns the page (boxed, so it does not move) and
        // outlives every client of these tests; the page is all atomics.
        unsafe { &*self.page }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        let page = self.page;
        // SAFETY: as in `page`.
        let n = self.ep.write(unsafe { &*page }, bytes).unwrap();
        assert_eq!(n, bytes.len(), "request ring full in a test");
    }

    fn send(&mut self, ty: T, body: &[u8]) -> u32 {
        self.next += 1;
        let h = StoreMsgHeader::new(ty, self.next, body.len() as u32);
        self.send_raw(&[h.as_bytes(), body].concat());
        self.next
    }

    /// Every complete message waiting: (type, req_id, payload).
    fn recv(&mut self) -> Vec<(u32, u32, Vec<u8>)> {
        let page = self.page;
        let mut out = Vec::new();
        // SAFETY: as in `page`.
        while let Some((h, b)) = self.asm.pull(&mut self.ep, unsafe { &*page }).unwrap() {
            out.push((h.msg_type, h.req_id, b.to_vec()));
        }
        out
    }
}

/// A server with domains 1 and 2 introduced, and their clients.
fn setup() -> (Server, Client, Client) {
    let mut s = Server::new();
    s.introduce(1, "one", Box::new(SharedStorePage::new()));
    s.introduce(2, "two", Box::new(SharedStorePage::new()));
    let c = |s: &Server, d| {
        let page: *const SharedStorePage = s.page(d).unwrap();
        // SAFETY: as in `Client::page`.
        let ep = StoreEndpoint::client(unsafe { &*page });
        Client {
            page,
            ep,
            asm: Box::new(MsgAssembler::new()),
            next: 0,
        }
    };
    let (c1, c2) = (c(&s, 1), c(&s, 2));
    (s, c1, c2)
}

fn events(c: &mut Client) -> Vec<String> {
    c.recv()
        .into_iter()
        .filter(|m| m.0 == T::WatchEvent.raw())
        .map(|m| String::from_utf8(m.2).unwrap().replace('\0', "|"))
        .collect()
}

#[test]
fn a_domain_sees_its_home_and_not_others() {
    let (mut s, ..) = setup();
    assert_eq!(read(&mut s, 1, "/local/domain/1/name").unwrap(), b"one");
    assert_eq!(read(&mut s, 1, "name").unwrap(), b"one", "relative");
    assert_eq!(read(&mut s, 1, "domid").unwrap(), b"1");
    write(&mut s, 1, "data/x", "hello").unwrap();
    assert_eq!(read(&mut s, 1, "/local/domain/1/data/x").unwrap(), b"hello");
    assert_eq!(read(&mut s, 1, "data/missing"), Err(StoreError::NoEnt));
    // Another domain's home: refused, whether the node exists or not.
    assert_eq!(
        read(&mut s, 2, "/local/domain/1/data/x"),
        Err(StoreError::Access)
    );
    assert_eq!(
        read(&mut s, 2, "/local/domain/1/nope"),
        Err(StoreError::Access)
    );
    assert_eq!(
        write(&mut s, 2, "/local/domain/1/x", "y"),
        Err(StoreError::Access)
    );
    assert_eq!(read(&mut s, 2, "/local/domain"), Err(StoreError::Access));
    assert_eq!(
        req(&mut s, 2, T::Directory, b"/local/domain/1\0"),
        Err(StoreError::Access)
    );
    assert_eq!(write(&mut s, 1, "/x", "y"), Err(StoreError::Access), "root");
    // dom0 sees everything.
    assert_eq!(
        read(&mut s, DOM0, "/local/domain/1/data/x").unwrap(),
        b"hello"
    );
    assert_eq!(
        req(&mut s, DOM0, T::Directory, b"/local/domain\0").unwrap(),
        b"1\x002\x00"
    );
    assert_eq!(
        req(&mut s, 1, T::Directory, b"\0"),
        Err(StoreError::Inval),
        "empty path"
    );
    assert_eq!(req(&mut s, 1, T::GetPerms, b"name\0").unwrap(), b"n1\0");
}

#[test]
fn granted_nodes_and_owner_changes() {
    let (mut s, ..) = setup();
    write(&mut s, 1, "shared", "v").unwrap();
    req(&mut s, 1, T::SetPerms, b"shared\0n1\0r2\0").unwrap();
    assert_eq!(read(&mut s, 2, "/local/domain/1/shared").unwrap(), b"v");
    assert_eq!(
        write(&mut s, 2, "/local/domain/1/shared", "w"),
        Err(StoreError::Access)
    );
    // Only dom0 changes owners.
    assert_eq!(
        req(&mut s, 1, T::SetPerms, b"shared\0n2\0"),
        Err(StoreError::Perm)
    );
    assert_eq!(
        req(&mut s, 2, T::SetPerms, b"/local/domain/1/shared\0b2\0"),
        Err(StoreError::Access)
    );
    req(&mut s, 1, T::SetPerms, b"shared\0n1\0b2\0").unwrap();
    write(&mut s, 2, "/local/domain/1/shared/sub", "by two").unwrap();
    // What domain 2 created below is its own, with the inherited grants.
    assert_eq!(
        req(&mut s, DOM0, T::GetPerms, b"/local/domain/1/shared/sub\0").unwrap(),
        b"n2\0b2\0"
    );
    for bad in [
        &b"shared\0"[..],
        b"shared\0x1\0",
        b"shared\0r1",
        b"shared\0r\0",
    ] {
        assert_eq!(
            req(&mut s, 1, T::SetPerms, bad),
            Err(StoreError::Inval),
            "{bad:?}"
        );
    }
    let many: Vec<u8> = (0..17)
        .flat_map(|i| alloc::format!("r{i}\0").into_bytes())
        .collect();
    assert_eq!(
        req(&mut s, 1, T::SetPerms, &[&b"shared\0"[..], &many].concat()),
        Err(StoreError::TooBig)
    );
}

#[test]
fn mkdir_rm_and_limits() {
    let (mut s, ..) = setup();
    req(&mut s, 1, T::Mkdir, b"a/b/c\0").unwrap();
    req(&mut s, 1, T::Mkdir, b"a/b/c\0").unwrap();
    assert_eq!(req(&mut s, 1, T::Directory, b"a\0").unwrap(), b"b\0");
    write(&mut s, 1, "a-z", "sibling that sorts inside a's range").unwrap();
    req(&mut s, 1, T::Rm, b"a\0").unwrap();
    assert_eq!(read(&mut s, 1, "a/b"), Err(StoreError::NoEnt));
    assert_eq!(read(&mut s, 1, "a-z").unwrap().len(), 35);
    assert_eq!(req(&mut s, 1, T::Rm, b"a\0"), Err(StoreError::NoEnt));
    assert_eq!(req(&mut s, DOM0, T::Rm, b"/\0"), Err(StoreError::Inval));
    let big = "x".repeat(STORE_VALUE_MAX + 1);
    assert_eq!(write(&mut s, 1, "big", &big), Err(StoreError::TooBig));
    let long = "p/".repeat(130) + "end";
    assert!(matches!(
        write(&mut s, 1, &long, "v"),
        Err(StoreError::Inval | StoreError::TooBig)
    ));
    for bad in ["/a//b", "a/", "/a b", "@x"] {
        assert_eq!(write(&mut s, 1, bad, "v"), Err(StoreError::Inval), "{bad}");
    }
    assert_eq!(req(&mut s, 1, T::Write, b"no-nul"), Err(StoreError::Inval));
    assert_eq!(
        req(&mut s, 1, T::Read, b"name\0extra"),
        Err(StoreError::Inval)
    );
}

#[test]
fn node_quota() {
    let (mut s, ..) = setup();
    let owned = s.tree().owned_by(1);
    for i in owned..STORE_NODE_QUOTA {
        write(&mut s, 1, &alloc::format!("n{i}"), "").unwrap();
    }
    assert_eq!(write(&mut s, 1, "one-more", ""), Err(StoreError::Quota));
    // Rewriting an existing node needs no quota; dom0 has none.
    write(&mut s, 1, "n999", "v").unwrap();
    write(&mut s, DOM0, "/local/domain/1/by-dom0", "v").unwrap();
    // dom0's node counts for its owner, domain 1: one removal is not enough.
    req(&mut s, 1, T::Rm, b"n999\0").unwrap();
    assert_eq!(write(&mut s, 1, "one-more", ""), Err(StoreError::Quota));
    req(&mut s, 1, T::Rm, b"n998\0").unwrap();
    write(&mut s, 1, "one-more", "").unwrap();
}

#[test]
fn watches_fire_once_per_change() {
    let (mut s, mut c1, _) = setup();
    c1.send(T::Watch, b"data\0tok\0");
    s.service();
    let msgs = c1.recv();
    assert_eq!(
        msgs[0],
        (T::Watch.raw(), 1, b"OK\0".to_vec()),
        "answer first"
    );
    assert_eq!(msgs[1].0, T::WatchEvent.raw());
    assert_eq!(msgs[1].2, b"data\0tok\0", "once when set, relative");
    assert_eq!(msgs.len(), 2);
    write(&mut s, DOM0, "/local/domain/1/data", "1").unwrap();
    write(&mut s, DOM0, "/local/domain/1/data/deep/er", "2").unwrap();
    write(&mut s, DOM0, "/local/domain/1/database", "not below").unwrap();
    write(&mut s, DOM0, "/local/domain/1/other", "no").unwrap();
    s.service();
    assert_eq!(events(&mut c1), ["data|tok|", "data/deep/er|tok|"]);
    req(&mut s, DOM0, T::Rm, b"/local/domain/1/data\0").unwrap();
    s.service();
    assert_eq!(events(&mut c1), ["data|tok|"]);
    c1.send(T::Unwatch, b"data\0tok\0");
    s.service();
    assert_eq!(c1.recv()[0].2, b"OK\0");
    write(&mut s, DOM0, "/local/domain/1/data", "3").unwrap();
    s.service();
    assert!(events(&mut c1).is_empty());
}

#[test]
fn watches_respect_permissions_and_removals() {
    let (mut s, mut c1, mut c2) = setup();
    // Domain 2 watches domain 1's home: it may set the watch but hears
    // nothing it may not read.
    c2.send(T::Watch, b"/local/domain/1\0spy\0");
    c2.send(T::Watch, b"@releaseDomain\0rel\0");
    s.service();
    assert_eq!(
        events(&mut c2),
        ["/local/domain/1|spy|", "@releaseDomain|rel|"]
    );
    write(&mut s, 1, "secret", "x").unwrap();
    write(&mut s, 1, "open", "y").unwrap();
    req(&mut s, 1, T::SetPerms, b"open\0n1\0r2\0").unwrap();
    s.service();
    assert_eq!(
        events(&mut c2),
        ["/local/domain/1/open|spy|"],
        "only the granted node"
    );
    // A watch below a removed node fires with its own path.
    c1.send(T::Watch, b"/local/domain/1/a/b\0deep\0");
    s.service();
    assert_eq!(events(&mut c1), ["/local/domain/1/a/b|deep|"]);
    write(&mut s, 1, "a/b/c", "v").unwrap();
    s.service();
    assert_eq!(events(&mut c1), ["/local/domain/1/a/b/c|deep|"]);
    req(&mut s, 1, T::Rm, b"a\0").unwrap();
    s.service();
    assert_eq!(events(&mut c1), ["/local/domain/1/a/b|deep|"]);
    // Destroying domain 1 fires domain 2's release watch once.
    assert!(s.release(1).is_some());
    s.service();
    assert_eq!(events(&mut c2), ["@releaseDomain|rel|"]);
    assert_eq!(
        read(&mut s, DOM0, "/local/domain/1"),
        Err(StoreError::NoEnt)
    );
}

#[test]
fn watch_quota_and_duplicates() {
    let (mut s, ..) = setup();
    assert_eq!(req(&mut s, 1, T::Watch, b"a\0t\0").unwrap(), b"OK\0");
    assert_eq!(req(&mut s, 1, T::Watch, b"a\0t\0"), Err(StoreError::Exist));
    assert_eq!(
        req(&mut s, 1, T::Unwatch, b"a\0u\0"),
        Err(StoreError::NoEnt)
    );
    for i in 1..STORE_WATCH_QUOTA {
        req(&mut s, 1, T::Watch, alloc::format!("a\0t{i}\0").as_bytes()).unwrap();
    }
    assert_eq!(req(&mut s, 1, T::Watch, b"a\0z\0"), Err(StoreError::Quota));
    assert_eq!(req(&mut s, 1, T::Watch, b"a\0"), Err(StoreError::Inval));
    assert_eq!(
        req(&mut s, 1, T::Watch, b"@a/b\0t\0"),
        Err(StoreError::Inval)
    );
}

#[test]
fn protocol_answers_errors_in_order() {
    let (mut s, mut c1, _) = setup();
    c1.send(T::Write, b"k\0v");
    c1.send(T::Read, b"k\0");
    c1.send(T::Read, b"/local/domain/2/name\0");
    let mut h = StoreMsgHeader::new(T::Read, 99, 2);
    h.tx_id = 5;
    c1.send_raw(&[h.as_bytes(), b"k\0"].concat());
    h = StoreMsgHeader::new(T::Read, 100, 0);
    h.msg_type = 77;
    c1.send_raw(h.as_bytes());
    c1.send(T::WatchEvent, b"k\0t\0");
    assert_eq!(s.service(), vec![1], "domain 1 is notified");
    let got = c1.recv();
    let err = T::Error.raw();
    assert_eq!(
        got,
        vec![
            (T::Write.raw(), 1, b"OK\0".to_vec()),
            (T::Read.raw(), 2, b"v".to_vec()),
            (err, 3, b"EACCES\0".to_vec()),
            (err, 99, b"ENOSYS\0".to_vec()),
            (err, 100, b"EINVAL\0".to_vec()),
            (err, 4, b"EINVAL\0".to_vec()),
        ]
    );
    assert!(s.is_connected(1));
}

#[test]
fn an_impossible_index_drops_the_connection() {
    let (mut s, mut c1, mut c2) = setup();
    c2.send(T::Watch, b"@releaseDomain\0t\0");
    c1.send(T::Watch, b"name\0mine\0");
    s.service();
    c1.recv();
    c1.page().req_prod.store(
        c1.ep.produced().wrapping_add(5000),
        core::sync::atomic::Ordering::Release,
    );
    s.service();
    assert!(!s.is_connected(1));
    assert!(s.take_notices()[0].contains("domain 1: connection dropped"));
    // Its watches are gone; the other domain is served as before.
    write(&mut s, DOM0, "/local/domain/1/name", "x").unwrap();
    c2.send(T::Read, b"name\0");
    s.service();
    assert_eq!(c2.recv().last().unwrap().2, b"two");
}

#[test]
fn an_oversized_message_drops_the_connection() {
    let (mut s, mut c1, _) = setup();
    let h = StoreMsgHeader::new(T::Write, 1, STORE_PAYLOAD_MAX as u32 + 1);
    c1.send_raw(h.as_bytes());
    s.service();
    assert!(!s.is_connected(1));
    assert!(s.take_notices()[0].contains("payload"));
}

#[test]
fn a_client_that_never_reads_is_dropped() {
    let (mut s, mut c1, _) = setup();
    write(&mut s, 1, "v", &"x".repeat(STORE_VALUE_MAX)).unwrap();
    let mut rounds = 0;
    while s.is_connected(1) {
        for _ in 0..8 {
            c1.send(T::Read, b"v\0");
        }
        s.service();
        rounds += 1;
        assert!(rounds < 1000, "never dropped");
    }
    assert!(rounds * 8 * STORE_VALUE_MAX > STORE_OUTPUT_MAX);
}

#[test]
fn garbage_never_panics() {
    // xorshift: deterministic bytes.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let (mut s, mut c1, _) = setup();
        for _ in 0..20 {
            let ty = [2, 1, 3, 4, 5, 11, 12, 13, 14, 15, 16, 0, 99][next() as usize % 13];
            let len = next() as usize % 64;
            let body: Vec<u8> = (0..len)
                .map(|_| {
                    let b = next() as u8;
                    // Mostly path-like bytes, so requests get far.
                    if b < 200 {
                        b"ab/0_@-\0rnwb12"[b as usize % 14]
                    } else {
                        b
                    }
                })
                .collect();
            let h = StoreMsgHeader {
                msg_type: ty,
                req_id: round,
                tx_id: u32::from(next() % 50 == 0),
                len: body.len() as u32,
            };
            c1.send_raw(&[h.as_bytes(), &body].concat());
            s.service();
            for (t, _, p) in c1.recv() {
                if t == T::Error.raw() {
                    let name = p.strip_suffix(b"\0").unwrap();
                    assert!(StoreError::from_name(name).is_some(), "{p:?}");
                }
            }
        }
        // Raw garbage, header included.
        let junk: Vec<u8> = (0..200).map(|_| next() as u8).collect();
        c1.send_raw(&junk);
        s.service();
        s.service();
        let _ = c1.recv();
        assert!(read(&mut s, DOM0, "/local/domain/2/name").is_ok());
    }
}

#[test]
fn listing_is_xenstore_ls_shaped() {
    let (mut s, ..) = setup();
    write(&mut s, 1, "dev/a", "q\"uote\n").unwrap();
    write(&mut s, 1, "dev-x", "").unwrap();
    let lines = listing::lines(s.tree(), "/local/domain/1").unwrap();
    assert_eq!(
        lines,
        [
            "dev = \"\"",
            " a = \"q\\\"uote\\x0a\"",
            "dev-x = \"\"",
            "domid = \"1\"",
            "name = \"one\"",
        ]
    );
    let all = listing::lines(s.tree(), "/").unwrap();
    assert_eq!(all[0], "local = \"\"");
    assert_eq!(all[1], " domain = \"\"");
    assert_eq!(all[2], "  1 = \"\"");
    assert_eq!(listing::lines(s.tree(), "/nope"), Err(StoreError::NoEnt));
    assert_eq!(listing::lines(s.tree(), "bad//"), Err(StoreError::Inval));
}

#[test]
fn shell_verbs_parse() {
    use crate::shell::{Command, parse};
    assert_eq!(parse("store-ls"), Ok(Command::StoreLs(None)));
    assert_eq!(
        parse("store-ls /local"),
        Ok(Command::StoreLs(Some("/local".into())))
    );
    assert_eq!(
        parse("store-read /a/b"),
        Ok(Command::StoreRead("/a/b".into()))
    );
    assert_eq!(
        parse("store-write /a/b  -1 two"),
        Ok(Command::StoreWrite {
            path: "/a/b".into(),
            value: "-1 two".into()
        })
    );
    let err = |l: &str| parse(l).unwrap_err().to_string();
    assert_eq!(
        err("store-write /a"),
        "store-write: missing <Value> (usage: store-write <Path> <Value>)"
    );
    assert_eq!(
        err("store-read"),
        "store-read: missing <Path> (usage: store-read <Path>)"
    );
    assert_eq!(
        err("store-ls a b"),
        "store-ls: unexpected argument 'b' (usage: store-ls [<Path>])"
    );
}

#[test]
fn an_idle_pass_skips_nothing_that_is_due() {
    let (mut s, mut c1, _) = setup();
    c1.send(T::Watch, b"name\0mine\0");
    assert_eq!(s.service(), vec![1]);
    assert_eq!(c1.recv().len(), 2, "the answer and the first event");
    assert_eq!(s.service(), Vec::<u32>::new(), "nothing to do");
    assert!(c1.recv().is_empty());
    // A change made by dom0 itself queues an event with no request pending:
    // the next pass still writes it out.
    write(&mut s, DOM0, "/local/domain/1/name", "renamed").unwrap();
    assert_eq!(s.service(), vec![1]);
    assert_eq!(c1.recv().len(), 1, "the watch event");
    c1.send(T::Read, b"name\0");
    assert_eq!(s.service(), vec![1]);
    assert_eq!(c1.recv().last().unwrap().2, b"renamed");
}
