//! `hybrid-runner context [PATH] [--list] [-o FILE] [--dockerfile F]`: what exactly goes into
//! the image build context after `.dockerignore`.
//!
//! With `--list`, one path a line (directories with a trailing `/`); always `files: N`,
//! `size: <bytes> (<human>)` and, last, `sha256:<hex>` of the deterministic tar.gz. `-o`
//! writes that tar.gz. Exit 2 when PATH is not a directory.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::UsageError;
use hr_image::context::{ContextOptions, EntryKind, PackedContext, pack};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The context folder
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Print every path that goes in
    #[arg(long)]
    pub list: bool,
    /// Write the tar.gz to FILE
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A Dockerfile sent even if `.dockerignore` excludes it, relative to PATH (repeatable)
    /// [default: Dockerfile and Dockerfile.k8s]
    #[arg(long, value_name = "F")]
    pub dockerfile: Vec<PathBuf>,
    /// gzip level, 0-9
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
    /// Compression threads [default: the available cores]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.path.is_dir() {
        return Err(UsageError(format!(
            "{}: not a directory; pass the build context folder",
            args.path.display()
        ))
        .into());
    }
    let mut options = ContextOptions::new(&args.path);
    options.level = args.level;
    if let Some(threads) = args.threads {
        options.threads = usize::try_from(threads).unwrap_or(1);
    }
    options.always_include = if args.dockerfile.is_empty() {
        vec![PathBuf::from("Dockerfile"), PathBuf::from("Dockerfile.k8s")]
    } else {
        args.dockerfile.clone()
    };
    let packed = match &args.output {
        Some(path) => write_archive(path, &options)?,
        None => pack(&options, &mut std::io::sink())?,
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if args.list {
        for entry in &packed.entries {
            let slash = if entry.kind == EntryKind::Dir {
                "/"
            } else {
                ""
            };
            writeln!(out, "{}{slash}", entry.path)?;
        }
    }
    writeln!(out, "files: {}", packed.files)?;
    writeln!(
        out,
        "size: {} ({})",
        packed.total_size,
        human(packed.total_size)
    )?;
    writeln!(out, "sha256:{}", packed.sha256)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `1.5 KiB`, `210.3 MiB`: binary units, one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Packs into a temporary file beside `path` and renames it over `path` only once the
/// archive is complete and on disk: a failed pack leaves the previous archive as it was.
fn write_archive(path: &Path, options: &ContextOptions) -> anyhow::Result<PackedContext> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".context-")
        .suffix(".tmp")
        .tempfile_in(folder)
        .with_context(|| format!("creating a temporary file in {}", folder.display()))?;
    let mut writer = BufWriter::with_capacity(1 << 20, temp);
    let packed = pack(options, &mut writer)?;
    let temp = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    temp.as_file()
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))?;
    temp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(packed)
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(210 * 1024 * 1024), "210.0 MiB");
    }
}
