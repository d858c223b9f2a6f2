//! `/metrics`: Prometheus text on `METRICS_ADDR` only. The recorder is one per
//! process and the tests run in parallel, so counters are compared before and
//! after, never against absolute values.

use actix_web::http::StatusCode;

use crate::helpers::{Backend, TestApp, Trial, backend_tests};

async fn spawn_with_metrics(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.metrics_addr = Some("127.0.0.1:0".parse().expect("an address"));
    })
    .await
}

async fn scrape(app: &TestApp) -> String {
    let address = app.metrics_address.as_ref().expect("a metrics address");
    let response = awc::Client::new()
        .get(format!("{address}/metrics"))
        .send()
        .await;
    let mut response = response.expect("the metrics server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let body = response.body().await.expect("a scrape");
    String::from_utf8(body.to_vec()).expect("UTF-8 text")
}

/// The sum of the samples of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) =
                series.split_once('{').map_or((series, ""), |(n, l)| (n, l));
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

async fn metrics_are_served_on_their_own_address_and_not_on_the_public_port(backend: Backend) {
    let app = spawn_with_metrics(backend).await;

    let public = app.get("/metrics", None).await;
    let text = scrape(&app).await;

    assert_eq!(public.status, StatusCode::NOT_FOUND);
    for (kind, name) in [
        ("counter", "postapi_http_requests_total"),
        ("histogram", "postapi_http_request_duration_seconds"),
        ("gauge", "postapi_db_pool_connections"),
        ("gauge", "postapi_db_pool_idle_connections"),
        ("gauge", "postapi_db_pool_in_use_connections"),
        ("gauge", "postapi_db_pool_max_connections"),
        ("gauge", "postapi_db_pool_waiting_requests"),
        ("gauge", "postapi_password_hash_in_flight"),
        ("gauge", "postapi_password_hash_queue_depth"),
        ("counter", "postapi_password_hash_rejected_total"),
        ("counter", "postapi_logins_failed_total"),
        ("counter", "postapi_logins_throttled_total"),
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}")),
            "no {kind} {name} in:\n{text}"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "no help for {name}"
        );
    }
}

async fn without_a_metrics_address_nothing_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    assert!(app.metrics_address.is_none());
    assert_eq!(
        app.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn request_counters_and_latencies_move_by_route_pattern(backend: Backend) {
    let app = spawn_with_metrics(backend).await;
    let user = app.user("counted@example.com").await;
    let post = app.create_post(&user, "counted").await;
    let path = format!("/posts/{}", post["id"]);
    let by_pattern = [
        ("route", "/posts/{id}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    let unmatched = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    let timed = [("route", "/posts/{id}"), ("method", "GET")];
    let before = scrape(&app).await;

    for _ in 0..3 {
        assert_eq!(app.get(&path, user.token()).await.status, StatusCode::OK);
    }
    assert_eq!(
        app.get("/no/such/route/12345", None).await.status,
        StatusCode::NOT_FOUND
    );
    let after = scrape(&app).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert!(moved("postapi_http_requests_total", &by_pattern) >= 3.0);
    assert!(moved("postapi_http_requests_total", &unmatched) >= 1.0);
    assert!(moved("postapi_http_request_duration_seconds_count", &timed) >= 3.0);
    assert!(
        sample(
            &after,
            "postapi_http_request_duration_seconds_bucket",
            &[("le", "+Inf")]
        ) >= 3.0
    );
    // Raw paths never become labels.
    assert!(!after.contains(&format!("route=\"{path}\"")), "{after}");
    assert!(!after.contains("12345"), "{after}");
}

async fn the_pool_gauges_describe_this_apps_pool(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.metrics_addr = Some("127.0.0.1:0".parse().expect("an address"));
        settings.pool_size = 3;
    })
    .await;
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);

    let text = scrape(&app).await;

    assert_eq!(sample(&text, "postapi_db_pool_max_connections", &[]), 3.0);
    let open = sample(&text, "postapi_db_pool_connections", &[]);
    let idle = sample(&text, "postapi_db_pool_idle_connections", &[]);
    let in_use = sample(&text, "postapi_db_pool_in_use_connections", &[]);
    assert!((1.0..=3.0).contains(&open), "{text}");
    assert_eq!(open, idle + in_use);
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        metrics_are_served_on_their_own_address_and_not_on_the_public_port,
        without_a_metrics_address_nothing_is_served,
        request_counters_and_latencies_move_by_route_pattern,
        the_pool_gauges_describe_this_apps_pool,
    ]
}
