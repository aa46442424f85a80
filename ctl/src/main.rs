//! `backupctl`: parse the command line, run the command, map the outcome to an exit code.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = backupctl::Cli::parse();
    let telemetry = backup_telemetry::init("backupctl", backup_telemetry::LogFormat::Text, "warn");
    let code = match backupctl::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    };
    // process::exit skips destructors: flush telemetry first.
    telemetry.shutdown();
    std::process::exit(code);
}
