//! Counters that explain a CPU speed figure, taken over the training loop and recorded with
//! it: page faults (memory given back to the kernel and faulted in again, step after step; see
//! `SEQBENCH_MALLOC`), involuntary context switches (more runnable threads than cores: thread
//! pools that outnumber them, or other load), and the share of the machine's CPU time the
//! hypervisor stole (a VM's neighbours). None of them changes what is measured; they say when
//! a figure is not what the code alone would give.
use crate::record::Measurements;

/// A snapshot of the process's and the machine's counters.
pub struct Counters {
    usage: libc::rusage,
    /// (steal, total) jiffies over every CPU, from /proc/stat.
    cpu: Option<(u64, u64)>,
    load_avg: Option<f64>,
}

/// The machine's 1-minute load average (runnable and waiting tasks, /proc/loadavg).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

fn rusage() -> libc::rusage {
    // SAFETY: getrusage fills a zeroed, valid rusage struct.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    }
}

/// The machine's stolen and total CPU time so far (the `cpu` line of /proc/stat).
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let total = fields.iter().take(8).sum();
    Some((*fields.get(7)?, total))
}

/// The CPUs this process may run on (its affinity mask: a cgroup or `taskset` may allow fewer
/// than the machine has).
fn usable_cores() -> Option<u64> {
    // SAFETY: sched_getaffinity fills a zeroed cpu_set_t of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
            .then(|| libc::CPU_COUNT(&set) as u64)
    }
}

impl Counters {
    pub fn now() -> Self {
        Counters { usage: rusage(), cpu: cpu_times(), load_avg: load_average() }
    }

    /// Records what changed since `self` into `m`.
    pub fn record_since(&self, m: &mut Measurements) {
        let now = rusage();
        m.page_faults = Some((now.ru_minflt + now.ru_majflt - self.usage.ru_minflt - self.usage.ru_majflt) as u64);
        m.involuntary_switches = Some((now.ru_nivcsw - self.usage.ru_nivcsw) as u64);
        // The OS threads of this process: libtorch's intra-op and inter-op pools, oneDNN's, ours.
        m.process_threads = super::measure::proc_status_value("Threads");
        m.cores = usable_cores();
        m.load_avg_start = self.load_avg;
        m.load_avg_end = load_average();
        if let (Some((steal0, total0)), Some((steal1, total1))) = (self.cpu, cpu_times()) {
            m.cpu_steal = (total1 > total0).then(|| (steal1 - steal0) as f64 / (total1 - total0) as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touching_fresh_memory_counts_page_faults() {
        let before = Counters::now();
        let mut pages = vec![0u8; 64 << 20];
        for page in pages.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&pages);
        let mut m = Measurements::default();
        before.record_since(&mut m);
        // 16,384 pages touched (fewer with transparent huge pages, never none).
        assert!(m.page_faults.unwrap() > 0, "{:?}", m.page_faults);
        assert!(m.cpu_steal.is_some_and(|s| (0.0..=1.0).contains(&s)));
        assert!(m.process_threads.unwrap() >= 1 && m.cores.unwrap() >= 1);
    }
}
