//! What an operator's log shows of a database outage under load: one
//! warning when it starts and one line when it ends, not a line per 503;
//! the 503s are in the access log. The binary runs with its database behind
//! a proxy the test cuts (the shared PostgreSQL is never touched).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use postapi::config::DatabaseUrl;

use crate::helpers::{Backend, TestDatabase, Trial, postgres_tests};
use crate::proxy::{TcpProxy, postgres_address, through_port};
use crate::shutdown::start;

/// Counts of the answers the load got.
#[derive(Default)]
struct Answers {
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    other: AtomicUsize,
}

async fn token_for(client: &awc::Client, base: &str) -> String {
    let signed_up = client
        .post(format!("{base}/users"))
        .send_json(
            &serde_json::json!({ "email": "alice@example.com", "password": "correct horse" }),
        )
        .await
        .expect("sign up");
    assert_eq!(signed_up.status().as_u16(), 201);
    let mut login = client
        .post(format!("{base}/login"))
        .send_form(&[
            ("username", "alice@example.com"),
            ("password", "correct horse"),
        ])
        .await
        .expect("log in");
    let body: serde_json::Value = login.json().await.expect("a token");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn an_outage_under_load_logs_a_bounded_number_of_lines_and_recovers(backend: Backend) {
    let Backend::Postgres(admin_url) = &backend else {
        panic!("PostgreSQL only");
    };
    let mut proxy = TcpProxy::start(postgres_address(admin_url));
    let database = TestDatabase::create(&backend);
    let DatabaseUrl::Postgres(url) = database.url() else {
        panic!("a PostgreSQL database");
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = through_port(url, proxy.port());
    let (mut child, port, log) = start(
        dir.path(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("SECRET_KEY", "outage-log-secret-key-0123456789abcdef"),
            ("BCRYPT_COST", "4"),
            ("DATABASE_POOL_TIMEOUT_SECONDS", "1"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let token = token_for(&client, &base).await;

    // Eight clients reading posts until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Answers::default());
    let load: Vec<_> = (0..8)
        .map(|_| {
            let (stop, answers, base, token) =
                (stop.clone(), answers.clone(), base.clone(), token.clone());
            actix_web::rt::spawn(async move {
                let client = awc::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .finish();
                while !stop.load(Ordering::Acquire) {
                    let answer = client
                        .get(format!("{base}/posts"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    let counter = match answer.map(|answer| answer.status().as_u16()) {
                        Ok(200) => &answers.ok,
                        Ok(503) => &answers.unavailable,
                        _ => &answers.other,
                    };
                    counter.fetch_add(1, Ordering::AcqRel);
                }
            })
        })
        .collect();

    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    proxy.close();
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    proxy.reopen();
    let reopened = Instant::now();
    let ok_before = answers.ok.load(Ordering::Acquire);
    while answers.ok.load(Ordering::Acquire) < ok_before + 50 {
        assert!(
            reopened.elapsed() < Duration::from_secs(15),
            "no recovery 15 s after the database came back"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Release);
    for client in load {
        client.await.expect("a load client");
    }
    let _ = std::process::Command::new("kill")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();

    // The child has exited: its log ends, and with it the channel.
    let lines: Vec<String> = log.iter().collect();
    let is_access_line = |line: &&String| line.contains(" HTTP/1.1\" ");
    let others: Vec<&String> = lines.iter().filter(|l| !is_access_line(l)).collect();
    let unavailable = answers.unavailable.load(Ordering::Acquire);
    eprintln!(
        "{} ok, {unavailable} 503, {} other; {} log lines, {} not access lines",
        answers.ok.load(Ordering::Acquire),
        answers.other.load(Ordering::Acquire),
        lines.len(),
        others.len()
    );
    assert_eq!(
        answers.other.load(Ordering::Acquire),
        0,
        "only 200s and 503s"
    );
    assert!(
        unavailable >= 50,
        "the load met the outage: {unavailable} 503s"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("\" 503 ")).count(),
        unavailable,
        "every 503 is in the access log"
    );
    assert!(!lines.iter().any(|l| l.starts_with("ERROR")), "{others:#?}");
    let went = others
        .iter()
        .filter(|l| l.starts_with("WARNING:") && l.contains("cannot be reached"))
        .count();
    let back: Vec<_> = others
        .iter()
        .filter(|l| l.starts_with("INFO:") && l.contains("can be reached again"))
        .collect();
    assert_eq!(went, 1, "{others:#?}");
    assert_eq!(back.len(), 1, "{others:#?}");
    assert!(back[0].contains("requests were refused"), "{}", back[0]);
    // Start-up, the two outage lines, shutdown: a handful, whatever the load.
    assert!(others.len() <= 8, "{others:#?}");
}

pub fn tests() -> Vec<Trial> {
    postgres_tests![an_outage_under_load_logs_a_bounded_number_of_lines_and_recovers]
}
