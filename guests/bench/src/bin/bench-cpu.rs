//! bench-cpu: the `cpu-bound` compute kernel as a tern domain, between region
//! markers. `bench-bare` runs the same kernel with no hypervisor; the
//! difference in instructions is the hypervisor's overhead.
#![cfg_attr(target_os = "none", no_std, no_main)]

use bench_guests::{CPU_ROUNDS, compute, region_start, region_stop};
use pv_guest_sdk::{StartInfo, println};

pv_guest_sdk::entry!(bench_cpu);

fn bench_cpu(si: &StartInfo) {
    bench_guests::enable_cycles(si.cmdline().get_u64("pmu") == Some(1));
    println!("bench-cpu: rounds={CPU_ROUNDS}");
    region_start();
    let sum = compute(CPU_ROUNDS);
    region_stop();
    if let Some(c) = bench_guests::cycles_report(u64::from(CPU_ROUNDS)) {
        println!("bench-cpu: {c}");
    }
    println!("bench-cpu: checksum={sum:#010x}");
}
