//! `postapi`: read the settings, build the server, serve until stopped.

use std::process::ExitCode;

use postapi::config::Settings;
use postapi::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    // `.env` first, so that RUST_LOG may come from it.
    let settings = Settings::from_env();
    postapi::logging::init();
    let settings = match settings {
        Ok(settings) => settings,
        Err(error) => {
            log::error!("{}", one_line(&error));
            return ExitCode::FAILURE;
        }
    };
    for warning in settings.warnings() {
        log::warn!("{warning}");
    }

    let host = settings.host.clone();
    let database = settings.database_url.to_string();
    let metrics_address = settings.metrics_addr;
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(error) => {
            log::error!("{}", one_line(&error));
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "postapi serving {database} on http://{host}:{} (Press CTRL+C to quit)",
        app.port()
    );
    if let (Some(address), Some(port)) = (metrics_address, app.metrics_port()) {
        log::info!("postapi metrics at http://{}:{port}/metrics", address.ip());
    }
    match app.run_until_stopped().await {
        Ok(()) => {
            log::info!("Shutdown complete.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            log::error!("server stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

/// libpq's messages span lines; an operator should get one.
fn one_line(error: &dyn std::fmt::Display) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
