//! CPU time of a running process: the sum over its threads of the time each has
//! spent on a CPU (`/proc/PID/task/TID/schedstat`, in nanoseconds), which is far
//! finer than the clock ticks of `/proc/PID/stat`.

use std::time::Duration;

/// CPU time the process `pid` has used so far (its live threads: a thread that
/// has exited takes its time with it, so measure over spans in which the
/// process keeps its threads, as a tokio runtime does).
pub fn of(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("the threads of process {pid}: {e}"));
    let nanos: Vec<u64> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .collect();
    assert!(
        !nanos.is_empty(),
        "no schedstat could be read for process {pid}"
    );
    Duration::from_nanos(nanos.iter().sum())
}

/// CPU time the process `pid` has used since it had used `before`. A smaller
/// sum means a thread exited, taking its time with it: the figure would be
/// wrong, so the measurement stops there.
pub fn since(pid: u32, before: Duration) -> Duration {
    of(pid).checked_sub(before).unwrap_or_else(|| {
        panic!("a thread of process {pid} exited during the measurement; its CPU time is lost")
    })
}

/// CPU time this process has used so far.
pub fn own() -> Duration {
    of(std::process::id())
}
