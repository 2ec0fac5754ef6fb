//! Harness self-tests with `sh` standing in for QEMU.

use super::*;
use crate::re;

const T: Duration = Duration::from_secs(5);

fn sh(script: &str) -> Qemu {
    let cmd = ["sh", "-c", script].map(String::from);
    Qemu::start(
        &cmd,
        "sh".into(),
        Duration::from_secs(10),
        vec!["EL2 exception".into()],
    )
    .unwrap()
}

#[test]
fn expects_in_order_and_consumes() {
    let mut q = sh("printf 'a 1\\r\\nb 2\\na 3\\n'; exec sleep 5");
    assert_eq!(q.expect("a", T).unwrap().line, "a 1");
    let m = q.expect(re(r"a (\d)"), T).unwrap();
    assert_eq!(m.group(1), "3");
    // "b 2" was consumed by the regex expect.
    assert!(matches!(
        q.expect("b", Duration::from_millis(200)),
        Err(Error::Timeout { .. })
    ));
    q.failed = false; // an expected failure: keep the test output quiet
}

#[test]
fn expect_all_any_order() {
    let mut q = sh("echo 'cpu 2 online'; echo 'cpu 0 online'; echo 'cpu 1 online'; exec sleep 5");
    let m = q
        .expect_all(&["cpu 0 online", "cpu 1 online", "cpu 2 online"], T)
        .unwrap();
    assert_eq!(m[0].line, "cpu 0 online");
    assert_eq!(q.cursor, (3, 0));
}

#[test]
fn fails_fast_on_marker_and_exit() {
    let mut q = sh("echo 'EL2 exception: Data Abort'; exec sleep 5");
    let start = Instant::now();
    assert!(matches!(q.expect("never", T), Err(Error::Failure { .. })));
    assert!(start.elapsed() < T);
    q.failed = false;

    let mut q = sh("echo bye");
    assert!(matches!(q.expect("never", T), Err(Error::Exited { .. })));
    assert!(q.wait_exit(T).unwrap().success());
    q.failed = false;

    // Expecting the marker itself is fine.
    let mut q = sh("echo 'EL2 exception: Data Abort'; exec sleep 5");
    q.expect("EL2 exception: ", T).unwrap();
}

#[test]
fn send_line_and_prompt_without_newline() {
    let mut q = sh("printf 'login> '; x=$(head -c 6); echo \"got $x\"; exit 3");
    q.expect("login> ", T).unwrap();
    q.send_line("hello").unwrap();
    q.expect("got hello", T).unwrap();
    assert_eq!(q.wait_exit(T).unwrap().code(), Some(3));
}

#[test]
fn marker_after_the_match_is_left_for_later() {
    let mut q = sh("echo 'hook 0x10'; echo 'EL2 exception: X'; echo 'FAR 0x10'; exec sleep 5");
    std::thread::sleep(Duration::from_millis(300));
    q.expect("hook", T).unwrap();
    q.expect("EL2 exception", T).unwrap();
    q.expect("FAR", T).unwrap();
}

#[test]
fn regex_waits_for_the_whole_line() {
    let mut q = sh("printf 'addr 0x8'; sleep 0.3; echo '0000000'; exec sleep 5");
    let m = q.expect(re(r"addr (0x[0-9a-f]+)"), T).unwrap();
    assert_eq!(m.group(1), "0x80000000");
}
