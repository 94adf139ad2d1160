//! The `weir` binary: everything lives in the `weir_cli` library.
use std::process::ExitCode;

fn main() -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match weir_cli::run(std::env::args_os(), &mut out) {
        Ok(code) => ExitCode::from(code),
        Err(e) if weir_cli::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("weir: {e:#}");
            }
            ExitCode::from(weir_cli::EXIT_ERROR)
        }
    }
}
