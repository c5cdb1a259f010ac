//! The `parnet` command line: parse, call a library function, print.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = parnet_train::cli::Cli::parse();
    match parnet_train::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
