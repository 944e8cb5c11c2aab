//! What the load tools read from the processes they measure: CPU time from `/proc` and figures
//! from Prometheus text pages (issue 14, goals 2 and 3: where a run's CPU went, per process and
//! per event, so that a stand-in's own share of the machine is shown in the same run).

use std::time::{Duration, Instant};

/// Linux reports `utime`/`stime` in `USER_HZ` ticks, 100 per second on every architecture Linux
/// supports for userspace (`sysconf(_SC_CLK_TCK)`), independent of the kernel's `HZ`.
const TICKS_PER_SECOND: u64 = 100;

/// User + system CPU time of process `pid` so far (its threads included), or `None` when it is
/// gone or `/proc` is not readable.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU time `pid` spent since `before` (an earlier [`cpu_time`] of it); `None` when either
/// reading failed (the process was gone or never there).
pub fn cpu_since(pid: u32, before: Option<Duration>) -> Option<Duration> {
    Some(cpu_time(pid)?.saturating_sub(before?))
}

/// User + system CPU time of this process so far.
pub fn own_cpu_time() -> Duration {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat(&s)).unwrap_or_default()
}

/// CPU time so far of the threads of `pid` that librdkafka runs (named `rdk:…`: its main,
/// broker and queue threads), or `None` when `/proc/<pid>/task` is not readable. Under load
/// an idempotent producer's broker thread spins while a partition's next batch waits for the
/// acknowledgement of the one in flight (`runtime::kafka::KafkaConfig::idempotence`;
/// BENCHMARKS.md §7 and §10), so they are shown apart from the service's own work.
/// (A thread that exits between two readings takes its time with it; librdkafka's live as long
/// as their client.)
pub fn kafka_client_cpu_time(pid: u32) -> Option<Duration> {
    let mut sum = Duration::ZERO;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        if thread_name(&stat).is_some_and(|n| n.starts_with("rdk:")) {
            sum += parse_stat(&stat).unwrap_or_default();
        }
    }
    Some(sum)
}

/// The command (thread) name of a `/proc/<pid>/stat` line: between the first `(` and the last `)`.
fn thread_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses
/// and may hold spaces or parentheses, so fields are counted from the last `)`: `utime` and
/// `stime` are fields 14 and 15 of the line, the 12th and 13th after the name.
fn parse_stat(stat: &str) -> Option<Duration> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / TICKS_PER_SECOND))
}

/// `name=pid` (as `--cpu ingest=1234` gives it).
pub fn parse_named_pid(spec: &str) -> Result<(String, u32), String> {
    let (name, pid) = spec.split_once('=').ok_or_else(|| format!("`{spec}`: expected name=pid"))?;
    let pid = pid.trim().parse().map_err(|e| format!("`{spec}`: pid: {e}"))?;
    Ok((name.trim().to_string(), pid))
}

/// CPU time spent by named processes (and by this one) between `start` and `stop`.
pub struct CpuMeter {
    started: Instant,
    own: Duration,
    /// name, pid, CPU time and its librdkafka threads' at the start
    procs: Vec<(String, u32, Option<Duration>, Option<Duration>)>,
}

/// One process's share of a measured span.
#[derive(Debug, Clone)]
pub struct CpuSpent {
    pub name: String,
    /// `None` when the process could not be read at the start or the end (it exited).
    pub cpu: Option<Duration>,
    /// Of which its librdkafka threads ([`kafka_client_cpu_time`]); zero for a process
    /// without them.
    pub kafka_client: Option<Duration>,
}

impl CpuMeter {
    pub fn start(procs: &[(String, u32)]) -> CpuMeter {
        CpuMeter { started: Instant::now(), own: own_cpu_time(), procs: procs.iter().map(|(n, p)| (n.clone(), *p, cpu_time(*p), kafka_client_cpu_time(*p))).collect() }
    }

    /// Wall time since `start`, and each process's CPU time since then; `own_name` names this
    /// process's line (the load client), first.
    pub fn stop(&self, own_name: &str) -> (Duration, Vec<CpuSpent>) {
        let mut spent = vec![CpuSpent { name: own_name.to_string(), cpu: Some(own_cpu_time().saturating_sub(self.own)), kafka_client: None }];
        for (name, pid, before, kafka_before) in &self.procs {
            let kafka_client = kafka_client_cpu_time(*pid).zip(*kafka_before).map(|(now, before)| now.saturating_sub(before));
            spent.push(CpuSpent { name: name.clone(), cpu: cpu_since(*pid, *before), kafka_client });
        }
        (self.started.elapsed(), spent)
    }
}

/// The machine's cores as this process may use them.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

/// Sum of every sample of metric `name` on a Prometheus text page (all label sets; a name with
/// no labels has one sample). `None` when the page has no sample of it.
pub fn prometheus_sum(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        // the name must end here: `x_count` is not a sample of `x`
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if let Some(v) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // a command name with spaces and a ')' in it; utime 250 ticks, stime 50 ticks
        let line = "1234 (tokio (rt) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 1000 100";
        assert_eq!(parse_stat(line), Some(Duration::from_secs(3)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn this_process_is_read_and_its_cpu_only_grows() {
        let pid = std::process::id();
        let before = cpu_time(pid).expect("own /proc entry");
        let mut x = 0u64;
        let until = Instant::now() + Duration::from_millis(60);
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = cpu_time(pid).expect("own /proc entry");
        assert!(after >= before + Duration::from_millis(20), "{before:?} -> {after:?} after 60 ms of spinning");
        assert_eq!(cpu_time(u32::MAX), None);
    }

    #[test]
    fn kafka_client_threads_are_counted_by_their_name() {
        let spin = |ms: u64| {
            let until = Instant::now() + Duration::from_millis(ms);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        };
        let pid = std::process::id();
        let before = kafka_client_cpu_time(pid).expect("own /proc entry");
        // a thread named as librdkafka names its threads spins 80 ms and stays alive while read
        let (done, stop) = std::sync::mpsc::channel::<()>();
        let (ready, spun) = std::sync::mpsc::channel::<()>();
        let rdk = std::thread::Builder::new().name("rdk:broker1".into()).spawn(move || {
            spin(80);
            ready.send(()).unwrap();
            stop.recv().ok();
        }).unwrap();
        spun.recv().unwrap();
        let mid = kafka_client_cpu_time(pid).expect("own /proc entry");
        // then this test's own thread spins (the rdk thread waits): not counted
        spin(80);
        let after = kafka_client_cpu_time(pid).expect("own /proc entry");
        done.send(()).unwrap();
        rdk.join().unwrap();
        assert!(mid >= before + Duration::from_millis(20), "rdk thread spun 80 ms: {before:?} -> {mid:?}");
        assert!(after <= mid + Duration::from_millis(20), "another thread counted: {mid:?} -> {after:?}");
        assert_eq!(thread_name("7 (rdk:main) S 1"), Some("rdk:main"));
        assert_eq!(thread_name("7 )rdk:main( S 1"), None, "malformed: no panic");
        assert_eq!(kafka_client_cpu_time(u32::MAX), None);
    }

    #[test]
    fn named_pids_parse_or_say_why_not() {
        assert_eq!(parse_named_pid("ingest=42"), Ok(("ingest".into(), 42)));
        assert!(parse_named_pid("ingest").unwrap_err().contains("name=pid"));
        assert!(parse_named_pid("ingest=x").unwrap_err().contains("pid"));
    }

    #[test]
    fn prometheus_sums_every_label_set_of_the_exact_name() {
        let page = "# TYPE lag gauge\nlag{partition=\"0\"} 3\nlag{partition=\"1\"} 4.5\nlag_total 100\nrecords_sum 10\nrecords_count 4\n";
        assert_eq!(prometheus_sum(page, "lag"), Some(7.5));
        assert_eq!(prometheus_sum(page, "records_sum"), Some(10.0));
        assert_eq!(prometheus_sum(page, "records"), None);
        assert_eq!(prometheus_sum(page, "missing"), None);
    }
}
