//! `seqbench`: parses the command line, runs the commands that only read results (`report`,
//! `compare`, `completions`, `--help`) itself, and hands every other command to the
//! `seqbench-torch` binary installed beside it. This binary links seqbench-core alone, not
//! libtorch, whose loading costs half a second: a report of 100,000 records takes about that.
//! The hand-over is an exec: the same process id, arguments, environment and signals, which
//! mpirun, job control and the job processes' supervision rely on.
use anyhow::{anyhow, Context};
use seqbench_core::cli::{self, Command};
use std::process::ExitCode;

/// The binary that runs everything needing libtorch, in the same directory as this one.
const TORCH_BINARY: &str = "seqbench-torch";

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Results(command) => command.run(cli.verbose),
        _ => exec_torch_binary(),
    };
    result.unwrap_or_else(|err| {
        eprintln!("Error: {err:#}");
        ExitCode::from(seqbench_core::error::exit_code(&err))
    })
}

/// Replaces this process with `seqbench-torch` and the same arguments; returns only on failure.
fn exec_torch_binary() -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let me = std::env::current_exe().context("locating the seqbench binary")?;
    let torch = me.with_file_name(TORCH_BINARY);
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| "seqbench".into());
    let err = std::process::Command::new(&torch).arg0(arg0).args(args).exec();
    Err(anyhow!(
        "cannot start {}: {err}. seqbench runs training, planning and data commands in {TORCH_BINARY}, \
         which `cargo build --release` builds beside it (`cargo install --path .` installs both)",
        torch.display()
    ))
}
