//! `fault-proxy`: the chaos tests' fault-injecting proxy as a standalone tool, to run a fleet (or
//! the demo) against a misbehaving AWS by hand:
//!
//! ```sh
//! fault-proxy --upstream http://127.0.0.1:4566 --throttle 0.1 --reset 0.01 &
//! export AWS_ENDPOINT_URL=http://127.0.0.1:<printed port>
//! ```
//!
//! Flags: `--upstream URL` (default: the emulator, `MOTO_PORT` or 4566), `--port N` (0: any free),
//! `--throttle P`, `--server-error P`, `--reset P`, `--reset-after-forward P`, `--latency-ms MS`
//! with `--latency-rate P` (default 1), `--seed N`, `--services sqs,dynamodb,...`,
//! `--report-secs N` (print the counters every N seconds; 0: only at exit). It prints
//! `listening on http://127.0.0.1:PORT` first and the counters on SIGINT or SIGTERM.

use backup_tests::fault_proxy::{FaultConfig, FaultProxy};
use std::net::SocketAddr;
use std::time::Duration;

const USAGE: &str = "usage: fault-proxy [--upstream URL] [--port N] [--throttle P] [--server-error P] [--reset P] \
[--reset-after-forward P] [--latency-ms MS [--latency-rate P]] [--seed N] [--services a,b] [--report-secs N]";

fn parse_args() -> Result<(String, u16, FaultConfig, u64), String> {
    let port_default = std::env::var("MOTO_PORT").unwrap_or_else(|_| "4566".into());
    let mut upstream = format!("http://127.0.0.1:{port_default}");
    let mut port = 0u16;
    let mut config = FaultConfig::none();
    let mut latency_ms: Option<u64> = None;
    let mut latency_rate = 1.0;
    let mut report_secs = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.into());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        let integer = |v: &str| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--upstream" => upstream = value,
            "--port" => port = value.parse().map_err(|e| format!("--port {value}: {e}"))?,
            "--throttle" => config.throttle = number(&value)?,
            "--server-error" => config.server_error = number(&value)?,
            "--reset" => config.reset = number(&value)?,
            "--reset-after-forward" => config.reset_after_forward = number(&value)?,
            "--latency-ms" => latency_ms = Some(integer(&value)?),
            "--latency-rate" => latency_rate = number(&value)?,
            "--seed" => config.seed = integer(&value)?,
            "--services" => {
                config.services = value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
            }
            "--report-secs" => report_secs = integer(&value)?,
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    config.latency = latency_ms.map(|ms| (Duration::from_millis(ms), latency_rate));
    Ok((upstream, port, config, report_secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (upstream, port, config, report_secs) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let proxy = FaultProxy::start_on(SocketAddr::from(([127, 0, 0, 1], port)), &upstream, config.clone()).await?;
    println!("listening on {} (upstream {upstream}; {config:?})", proxy.endpoint());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let period = Duration::from_secs(report_secs.max(1));
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(period), if report_secs > 0 => println!("{}", proxy.counts()),
        }
    }
    println!("{}", proxy.counts());
    Ok(())
}
