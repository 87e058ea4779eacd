use std::process::ExitCode;

fn main() -> ExitCode {
    match seqbench::cli::main() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("Error: {err:#}");
            ExitCode::from(seqbench::error::exit_code(&err))
        }
    }
}
