//! dom0's second shell on a PL011 of its own: QEMU `virt` with two serial
//! ports, the first the hypervisor's console as in every test, the second a
//! TCP server on 127.0.0.1 that the hypervisor gives dom0. `list` and `info`
//! typed there answer there (and not on the console), the console's shell
//! still works, `console <Domain>` attaches there, and `poweroff` on the
//! UART stops the machine.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use tern_tests::shell::{self, PROMPT};
use tern_tests::{Qemu, free_port, image, re};

const STEP: Duration = Duration::from_secs(30);

/// The second serial port, seen from its TCP end.
struct Terminal {
    stream: TcpStream,
    /// Everything received, `\r` dropped.
    seen: String,
}

impl Terminal {
    /// Connects to QEMU's serial server on 127.0.0.1:`port`, retrying while
    /// QEMU starts.
    fn connect(port: u16) -> Self {
        let start = Instant::now();
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < STEP => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("serial port 127.0.0.1:{port}: {e}"),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        Self {
            stream,
            seen: String::new(),
        }
    }

    /// Reads until `want` is in what came after byte `from`; returns the
    /// offset just past it.
    fn wait_for(&mut self, from: usize, want: &str) -> usize {
        let deadline = Instant::now() + STEP;
        let mut buf = [0u8; 1024];
        loop {
            if let Some(i) = self.seen[from..].find(want) {
                return from + i + want.len();
            }
            assert!(
                Instant::now() < deadline,
                "no {want:?} on the UART; it showed: {:?}",
                &self.seen[from..]
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("the UART's connection closed; it showed: {:?}", self.seen),
                Ok(n) => self.seen.extend(
                    String::from_utf8_lossy(&buf[..n])
                        .chars()
                        .filter(|&c| c != '\r'),
                ),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the UART: {e}"),
            }
        }
    }

    /// Types `cmd` and Enter; returns the lines between its echo and the
    /// next prompt.
    fn run(&mut self, cmd: &str) -> Vec<String> {
        let from = self.seen.len();
        self.stream.write_all(cmd.as_bytes()).unwrap();
        self.stream.write_all(b"\r").unwrap();
        let echoed = self.wait_for(from, &format!("{cmd}\n"));
        let end = self.wait_for(echoed, PROMPT);
        self.seen[echoed..end - PROMPT.len()]
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The `info` field `key` in `info`'s lines.
fn field(info: &[String], key: &str) -> String {
    let r = re(&format!(r"^{key} +: (.+)$"));
    info.iter()
        .find_map(|l| r.captures(l).map(|c| c[1].to_owned()))
        .unwrap_or_else(|| panic!("info has {key}: {info:?}"))
}

/// Boots `bundle` with the shell and a second serial port on a free
/// 127.0.0.1 port; returns QEMU and that port.
fn boot(bundle: &str) -> (Qemu, u16) {
    let port = free_port();
    let vm = Qemu::builder()
        .smp(2)
        .initrd(image(bundle).unwrap())
        .append("-- dom0.shell")
        .args([
            "-serial".to_owned(),
            format!("tcp:127.0.0.1:{port},server=on,wait=off"),
        ])
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    (vm, port)
}

/// Types `poweroff` on the UART and checks that QEMU exits with status 0.
fn poweroff(vm: &mut Qemu, uart: &mut Terminal) {
    let from = uart.seen.len();
    uart.stream.write_all(b"poweroff\r").unwrap();
    uart.wait_for(from, "dom0: powering off");
    let status = vm.wait_exit(STEP).unwrap();
    assert!(status.success(), "QEMU exit status {status:?}");
}

#[test]
fn shell_on_the_second_uart() {
    let (mut vm, port) = boot("bundle.cpio");
    // The hypervisor keeps its console and gives dom0 the other PL011.
    vm.expect(re(r"dom0: device .*9040000.*\(irq 40\)"), STEP)
        .unwrap();
    vm.expect(
        re(r"dom0: pl011 0x9040000: \d+ baud 8N1 .*interrupt 40"),
        STEP,
    )
    .unwrap();
    vm.expect("dom0: shell on the UART too", STEP).unwrap();
    vm.expect("dom0: domain demo (1) exited: poweroff", STEP)
        .unwrap();

    let mut uart = Terminal::connect(port);
    // The prompt was shown before the connection (QEMU dropped it): Enter
    // gives a fresh one.
    uart.run("");

    let list = uart.run("list");
    let header = re(r"^Name +ID +Mem +VCPUs +State +Time\(s\)$");
    assert!(list.iter().any(|l| header.is_match(l)), "{list:?}");
    let row = re(r"^Domain-0 +0 +\d+ +1 +r----- +\d+\.\d$");
    assert!(list.iter().any(|l| row.is_match(l)), "{list:?}");

    let info = uart.run("info");
    assert_eq!(field(&info, "hypervisor"), "tern");
    assert_eq!(field(&info, "nr_cpus"), "2");
    let errors = uart.run("frobnicate");
    assert_eq!(
        errors,
        ["error: unknown command 'frobnicate' (type 'help' for the list)"]
    );

    // The console's shell still works, and each answer went only to the
    // terminal its command was typed on (the console is read up to its
    // prompt here, so a leak would be in its log by now).
    let on_console = shell::run(&mut vm, "info", STEP);
    assert_eq!(field(&on_console, "nr_cpus"), "2");
    let on_console_log = vm.lines().iter().filter(|l| l.contains("nr_cpus")).count();
    assert_eq!(on_console_log, 1, "the UART's info showed on the console");
    assert_eq!(
        uart.seen.matches("nr_cpus").count(),
        1,
        "the console's info showed on the UART too"
    );

    poweroff(&mut vm, &mut uart);
}

#[test]
fn console_attach_on_the_uart() {
    let (mut vm, port) = boot("bundle-console.cpio");
    vm.expect("dom0: shell on the UART too", STEP).unwrap();
    let mut uart = Terminal::connect(port);
    uart.run("");
    let created = uart.run("create console-echo.toml");
    assert!(
        created
            .iter()
            .any(|l| l.starts_with("Started domain echo1")),
        "{created:?}"
    );
    // Detached, its output is the log's: prefixed, on the console.
    vm.expect(
        "[echo1] console-echo: hello from domain 1 on the console ring",
        STEP,
    )
    .unwrap();

    let from = uart.seen.len();
    uart.stream.write_all(b"console echo1\r").unwrap();
    let at = uart.wait_for(from, "Connected to echo1 (escape character is '^]')\n");
    // The recent output first, unprefixed, then live.
    let at = uart.wait_for(at, "console-echo: hello from domain 1 on the console ring");
    uart.stream.write_all(b"ping 42\r").unwrap();
    uart.wait_for(at, "echo: ping 42");
    // Ctrl-] detaches: the UART's prompt comes back.
    let from = uart.seen.len();
    uart.stream.write_all(b"\x1d").unwrap();
    uart.wait_for(from, PROMPT);
    // The console's log, read up to a prompt after the detach, never had
    // the attached output.
    shell::run(&mut vm, "list", STEP);
    assert!(
        !vm.lines().iter().any(|l| l.contains("ping 42")),
        "attached output went to the console"
    );
    poweroff(&mut vm, &mut uart);
}
