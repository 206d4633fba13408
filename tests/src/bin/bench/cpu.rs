//! CPU time of a running process: the sum over its threads of the time each has
//! spent on a CPU (`/proc/PID/task/TID/schedstat`, in nanoseconds), which is far
//! finer than the clock ticks of `/proc/PID/stat`.

use std::time::Duration;

/// CPU time the process `pid` has used so far (its live threads).
pub fn of(pid: u32) -> Duration {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("the threads of process {pid}: {e}"));
    let nanos: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// CPU time this process has used so far.
pub fn own() -> Duration {
    of(std::process::id())
}
