//! A step's output on its way out: memory that does not grow with how much a step prints
//! (the step is held back while the printer lags, and no line is lost), and masking that
//! holds across the 64 KiB cut of long lines and in every annotation property.

use std::io::Read;
use std::process::Stdio;

use super::*;

/// The runner's peak resident memory (`VmHWM`), in KiB, while it runs (0 once gone).
fn peak_rss_kib(pid: u32) -> u64 {
    harness::daemon_process::ProcessUsage::of(pid).map_or(0, |u| u.peak_rss_kib)
}

/// 4 KiB lines on stdout and stderr at once: 96 MiB in all.
const LOUD: &str = r#"on: push
jobs:
  loud:
    runs-on: ubuntu-latest
    steps:
      - run: |
          line=$(head -c 4095 /dev/zero | tr '\0' y)
          (yes "$line" | head -n 12288) &
          (yes "$line" | head -n 12288 >&2) &
          wait
"#;

/// Lines each stream prints.
const LOUD_LINES: usize = 12288;

/// Far below the 96 MiB printed: the runner before back-pressure held every line the
/// printer had not written yet, here all of them.
const PEAK_BOUND_KIB: u64 = 64 * 1024;

#[test]
fn a_step_printing_more_than_the_printer_takes_is_held_back_and_loses_nothing() {
    for json in [false, true] {
        let repo = Repo::with(LOUD);
        let mut command = repo.command(if json { &["--json"] } else { &[] });
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // Nobody reads the runner's output for a while: its printer blocks at once, and
        // only back-pressure keeps the step's 96 MiB out of the runner's memory.
        let mut peak = 0;
        for _ in 0..30 {
            std::thread::sleep(Duration::from_millis(100));
            peak = peak.max(peak_rss_kib(pid));
        }
        let mut stdout = child.stdout.take().unwrap();
        let mut lines = 0;
        let mut buf = vec![0u8; 1 << 20];
        let mut payload_line_end = false;
        let mut read_total = 0usize;
        loop {
            let n = stdout.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            read_total += n;
            for window in buf[..n].iter() {
                // A payload line ends in `yyyy\n` (`yyyy"}` ... in JSON).
                if *window == b'y' {
                    payload_line_end = true;
                } else {
                    if payload_line_end && (*window == b'\n' || *window == b'"') {
                        lines += 1;
                    }
                    payload_line_end = false;
                }
            }
            if read_total % (16 << 20) < n {
                peak = peak.max(peak_rss_kib(pid));
            }
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "json={json}: {status:?}");
        assert_eq!(
            lines,
            2 * LOUD_LINES,
            "json={json}: every line printed once"
        );
        assert!(
            peak > 0 && peak < PEAK_BOUND_KIB,
            "json={json}: peak RSS {peak} KiB, bound {PEAK_BOUND_KIB} KiB"
        );
    }
}

const CUT: &str = r#"on: push
jobs:
  cut:
    runs-on: ubuntu-latest
    steps:
      - run: |
          # The secret straddles the 64 KiB cut: 65533 bytes, then `hun|ter2`.
          head -c 65533 /dev/zero | tr '\0' a
          echo "${{ secrets.PASSWORD }} and more"
          head -c 65533 /dev/zero | tr '\0' b >&2
          echo "${{ secrets.PASSWORD }} on stderr" >&2
"#;

#[test]
fn a_secret_across_the_64k_cut_is_masked_on_both_sides() {
    let repo = Repo::with(CUT);
    for json in [false, true] {
        let mut args = vec!["-s", "PASSWORD=hunter2"];
        if json {
            args.push("--json");
        }
        let run = repo.exec(&args);
        run.assert_code(0);
        for part in ["hunter2", "hun\n", "hun\"", "\nter2", "\"ter2"] {
            assert!(!run.stdout.contains(part), "json={json}: {part:?} printed");
        }
        assert!(run.stdout.contains("aaa***"), "json={json}");
        assert!(run.stdout.contains("bbb***"), "json={json}");
        assert!(run.stdout.contains(" and more"), "json={json}");
        assert!(run.stdout.contains(" on stderr"), "json={json}");
    }
}

const PROPERTIES: &str = r#"on: push
jobs:
  annotate:
    runs-on: ubuntu-latest
    steps:
      - name: annotations
        run: |
          echo "::add-mask::added-at-runtime"
          echo "::warning file=src/${{ secrets.PASSWORD }}.rs,title=t ${{ secrets.PASSWORD }},line=3::m ${{ secrets.PASSWORD }}"
          echo "::error file=added-at-runtime.rs,title=added-at-runtime::added-at-runtime"
          echo "::notice file=ok.rs::plain"
"#;

#[test]
fn annotation_properties_are_masked() {
    let repo = Repo::with(PROPERTIES);
    for json in [false, true] {
        let mut args = vec!["-s", "PASSWORD=hunter2"];
        if json {
            args.push("--json");
        }
        let run = repo.exec(&args);
        for secret in ["hunter2", "added-at-runtime"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "json={json}: {secret} printed\n{}",
                run.all()
            );
        }
        assert!(
            run.stdout.contains("src/***.rs"),
            "json={json}\n{}",
            run.all()
        );
        assert!(run.stdout.contains("ok.rs"), "json={json}\n{}", run.all());
    }
}
