//! Log output in uvicorn's shape (`INFO:     message`), and the access line
//! written for every request. Warnings, errors and 5xx access lines written
//! while a request is handled end with its `request_id=`.

use std::io::Write;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Version;
use actix_web::middleware::Next;

use crate::request_id::RequestId;

/// Installs the logger; `RUST_LOG` filters. By default `info`, less actix-server's
/// own start-up chatter. Safe to call twice.
pub fn init() {
    let logger = env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or("info,actix_server=warn"),
    )
    .format(|out, record| {
        let level = match record.level() {
            log::Level::Warn => "WARNING",
            other => other.as_str(),
        };
        write!(out, "{:<10}{}", format!("{level}:"), record.args())?;
        if record.level() <= log::Level::Warn
            && let Some(id) = RequestId::current()
        {
            write!(out, " request_id={id}")?;
        }
        writeln!(out)
    })
    .build();
    let max_level = logger.filter();
    if log::set_boxed_logger(Box::new(ClientErrorsAsInfo(logger))).is_ok() {
        log::set_max_level(max_level);
    }
}

/// actix-http logs a request it cannot parse (a malformed or oversized head,
/// answered 400 or 431 before the app sees it) as an ERROR, "stream error:
/// ...". It is the client's mistake, not the server's: it is logged at INFO,
/// beside the access lines.
struct ClientErrorsAsInfo(env_logger::Logger);

impl ClientErrorsAsInfo {
    fn is_client_error(record: &log::Record<'_>) -> bool {
        record.level() == log::Level::Error
            && record.target().starts_with("actix_http::h1")
            && record.args().to_string().starts_with("stream error")
    }
}

impl log::Log for ClientErrorsAsInfo {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !Self::is_client_error(record) {
            self.0.log(record);
            return;
        }
        let metadata = log::Metadata::builder()
            .level(log::Level::Info)
            .target(record.target())
            .build();
        if self.0.enabled(&metadata) {
            self.0.log(
                &log::Record::builder()
                    .metadata(metadata)
                    .args(format_args!(
                        "malformed request from a client: {}",
                        record.args()
                    ))
                    .build(),
            );
        }
    }

    fn flush(&self) {
        self.0.flush();
    }
}

/// One line a request: `127.0.0.1:63400 - "DELETE /posts/1 HTTP/1.1" 204 No Content`.
/// It reads the request before any rewriting, so it logs what the client sent.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !log::log_enabled!(target: "postapi::access", log::Level::Info) {
        return next.call(req).await;
    }
    let peer = req
        .peer_addr()
        .map_or_else(|| "-".to_owned(), |addr| addr.to_string());
    let request_line = format!(
        "{} {} {}",
        req.method(),
        req.uri().path_and_query().map_or("/", |pq| pq.as_str()),
        http_version(req.version())
    );
    let response = next.call(req).await;
    let status = match &response {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    // Only a server error's line names the request id: the others keep
    // uvicorn's exact shape.
    let request_id = match RequestId::current() {
        Some(id) if status.is_server_error() => format!(" request_id={id}"),
        _ => String::new(),
    };
    log::info!(
        target: "postapi::access",
        "{peer} - \"{request_line}\" {} {}{request_id}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    response
}

fn http_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}
