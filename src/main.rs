use clap::Parser;
use cm_baseline::cli::{self, Cli, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    // The SDK's credential chain warns of every provider it tried; the command says once
    // what was missing (CM_LOG=aws_config=warn shows them).
    let filter = EnvFilter::try_from_env("CM_LOG").unwrap_or_else(|_| EnvFilter::new("warn,aws_config=error"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// mimalloc rather than the C library's allocator: each AWS call allocates and frees a few
/// hundred small objects across the runtime's threads (docs/benchmark.md, the profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(cli::EXIT_ERROR);
        }
    };
    let code = runtime.block_on(cli::main(cli));
    std::process::exit(code);
}
