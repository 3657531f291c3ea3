//! The process's CPU time, resident memory and open files, from `/proc`
//! (Linux; elsewhere they are left out of `/metrics`).

/// What `/proc/self` says.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Process {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
}

/// Clock ticks per second of `/proc/self/stat` (USER_HZ: 100 on every Linux ABI).
const USER_HZ: f64 = 100.0;

pub(super) fn read() -> Process {
    Process {
        cpu_seconds: cpu_seconds(),
        resident_bytes: resident_bytes(),
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
    }
}

/// utime + stime (fields 14 and 15; the command name before them may hold spaces).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn reads_this_process() {
        let p = super::read();
        assert!(p.resident_bytes.is_some_and(|b| b > 1 << 20));
        assert!(p.cpu_seconds.is_some());
        assert!(p.open_fds.is_some_and(|n| n >= 3));
    }
}
