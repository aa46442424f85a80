//! `backupctl`: parse the command line, run the command, map the outcome to an exit code
//! (`backup_core::exit`).

use backup_core::exit;
use clap::Parser;

const PROGRAM: &str = "backupctl";

#[tokio::main]
async fn main() {
    let cli = match backupctl::Cli::try_parse() {
        Ok(cli) => cli,
        // Usage errors: one line and exit 2 (help and --version print as clap does).
        Err(err) if err.use_stderr() => exit::fail(PROGRAM, err, exit::USAGE),
        Err(err) => err.exit(),
    };
    let telemetry = backup_telemetry::init(PROGRAM, backup_telemetry::LogFormat::Text, "warn");
    let code = match backupctl::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            let code = exit::code_for(err.as_ref());
            // A closed pipe (`| head`) ends the output quietly.
            if code != exit::BROKEN_PIPE {
                eprintln!("{PROGRAM}: error: {err:#}");
            }
            code
        }
    };
    // process::exit skips destructors: flush telemetry first.
    telemetry.shutdown();
    std::process::exit(code);
}
