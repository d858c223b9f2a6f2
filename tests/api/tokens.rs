//! The JWT middleware in front of `/posts…` and `/vote…`, and the tokens
//! `/login` issues: every refusal is the same 401 with a Bearer challenge.

use actix_web::http::StatusCode;
use chrono::TimeDelta;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, TEST_SECRET, TestApp, TestUser, Trial, backend_tests, plain_tests,
};

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as JWTs use it.
fn base64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64URL[(n >> (18 - 6 * i) & 0x3f) as usize]));
        }
    }
    out
}

fn base64url_decode(text: &str) -> Vec<u8> {
    let sextets: Vec<u32> = text
        .bytes()
        .map(|c| {
            BASE64URL
                .iter()
                .position(|&b| b == c)
                .unwrap_or_else(|| panic!("{c:?} is not base64url in {text:?}")) as u32
        })
        .collect();
    let mut out = Vec::new();
    for chunk in sextets.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, sextet)| n | sextet << (18 - 6 * i));
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn base64url_json(value: &Value) -> String {
    base64url_encode(value.to_string().as_bytes())
}

/// The three parts of a JWT.
fn parts(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    parts
        .try_into()
        .unwrap_or_else(|_| panic!("a JWT has three parts: {token}"))
}

/// The decoded JSON of one base64url part.
fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&base64url_decode(part)).expect("a JSON token part")
}

/// Signs `claims` with `algorithm` and `key`.
fn mint_with(algorithm: Algorithm, key: &str, claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(key.as_bytes()).expect("an HMAC key"),
    )
    .expect("a signed token")
}

/// Signs `claims` as the test server does: HS256 with the test key.
fn mint(claims: &Value) -> String {
    mint_with(Algorithm::HS256, TEST_SECRET, claims)
}

/// Seconds since the epoch by the server's (manual) clock.
fn now(app: &TestApp) -> i64 {
    use postapi::clock::Clock;
    app.clock.now().timestamp()
}

/// An hour from now by the server's clock.
fn in_an_hour(app: &TestApp) -> i64 {
    now(app) + 3600
}

async fn assert_accepted(app: &TestApp, token: &str) {
    let response = app.get("/posts", Some(token)).await;
    response.assert_status(StatusCode::OK);
    assert_eq!(response.json(), json!([]));
}

async fn assert_refused(app: &TestApp, token: &str) {
    app.get("/posts", Some(token)).await.assert_unauthorized();
}

/// Moves the clock on by `last_good` and asserts `user`'s token still opens
/// `GET /posts`, then on by two seconds more and asserts it is refused.
async fn assert_works_until_then_refused(app: &TestApp, user: &TestUser, last_good: TimeDelta) {
    app.advance_clock(last_good);
    let before = app.get("/posts", user.token()).await;
    app.advance_clock(TimeDelta::seconds(2));
    let after = app.get("/posts", user.token()).await;

    before.assert_status(StatusCode::OK);
    after.assert_unauthorized();
}

async fn a_request_without_an_authorization_header_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app.get("/posts", None).await;

    response.assert_unauthorized();
}

async fn a_basic_authorization_header_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let response = app
        .get_with_headers("/posts", &[("Authorization", "Basic xyz")])
        .await;

    response.assert_unauthorized();
}

async fn a_bearer_scheme_without_a_token_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for value in ["Bearer", "Bearer ", "Bearer    "] {
        let response = app
            .get_with_headers("/posts", &[("Authorization", value)])
            .await;

        response.assert_unauthorized();
    }
}

async fn a_garbage_bearer_token_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for token in ["garbage", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "...."] {
        assert_refused(&app, token).await;
    }
}

async fn the_bearer_scheme_is_matched_regardless_of_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    let lowercase = format!("bearer {}", user.token);
    let response = app
        .get_with_headers("/posts", &[("Authorization", &lowercase)])
        .await;

    response.assert_status(StatusCode::OK);
}

async fn the_middleware_refuses_before_any_handler_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let missing_post = app.get("/posts/12345", None).await;
    let bad_id = app.get("/posts/abc", None).await;
    let bad_body = app.post("/posts", json!({ "nonsense": true }), None).await;
    let bad_vote = app.post("/vote", json!({ "dir": 7 }), None).await;
    let trailing = app.get("/posts/", None).await;
    let vote_trailing = app.post("/vote/", json!({}), Some("garbage")).await;

    missing_post.assert_unauthorized();
    bad_id.assert_unauthorized();
    bad_body.assert_unauthorized();
    bad_vote.assert_unauthorized();
    trailing.assert_unauthorized();
    vote_trailing.assert_unauthorized();
}

async fn an_alg_none_token_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let header = base64url_json(&json!({ "alg": "none", "typ": "JWT" }));
    let payload = base64url_json(&json!({ "user_id": user.id, "exp": in_an_hour(&app) }));

    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        assert_refused(&app, &token).await;
    }
    for alg in ["None", "NONE", "nOnE"] {
        let header = base64url_json(&json!({ "alg": alg, "typ": "JWT" }));
        assert_refused(&app, &format!("{header}.{payload}.")).await;
    }
}

async fn a_token_signed_with_hs512_is_a_401_when_the_server_uses_hs256(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let claims = json!({ "user_id": user.id, "exp": in_an_hour(&app) });

    for algorithm in [Algorithm::HS384, Algorithm::HS512] {
        assert_refused(&app, &mint_with(algorithm, TEST_SECRET, &claims)).await;
    }
    // The same claims, signed as the server signs, pass.
    assert_accepted(&app, &mint(&claims)).await;
}

async fn a_token_whose_header_claims_another_algorithm_than_its_signature_is_a_401(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let token = mint(&json!({ "user_id": user.id, "exp": in_an_hour(&app) }));
    let [_, payload, signature] = parts(&token);
    let header = base64url_json(&json!({ "alg": "HS512", "typ": "JWT" }));

    assert_refused(&app, &format!("{header}.{payload}.{signature}")).await;
}

async fn a_token_signed_with_another_key_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let claims = json!({ "user_id": user.id, "exp": in_an_hour(&app) });

    for key in [
        "another-secret-key-that-is-at-least-32-bytes-long",
        "x",
        "test-secret-key",
    ] {
        assert_refused(&app, &mint_with(Algorithm::HS256, key, &claims)).await;
    }
}

async fn a_tampered_payload_with_the_original_signature_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let [header, payload, signature] = parts(&alice.token);
    let mut claims = decode_part(payload);
    claims["user_id"] = json!(bob.id);
    let tampered = format!("{header}.{}.{signature}", base64url_json(&claims));

    assert_refused(&app, &tampered).await;
    // The untampered token still works: only the change was refused.
    assert_accepted(&app, &alice.token).await;
}

async fn a_token_with_a_stretched_expiry_and_the_original_signature_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let [header, payload, signature] = parts(&alice.token);
    let mut claims = decode_part(payload);
    claims["exp"] = json!(claims["exp"].as_i64().expect("a numeric exp") + 86_400);

    assert_refused(
        &app,
        &format!("{header}.{}.{signature}", base64url_json(&claims)),
    )
    .await;
}

async fn a_token_without_exp_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    let response = app
        .get("/posts", Some(&mint(&json!({ "user_id": user.id }))))
        .await;
    let with_iat = app
        .get(
            "/posts",
            Some(&mint(&json!({ "user_id": user.id, "iat": now(&app) }))),
        )
        .await;

    response.assert_unauthorized();
    with_iat.assert_unauthorized();
}

async fn a_token_with_a_string_exp_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    for exp in [
        json!("9999999999"),
        json!(null),
        json!(true),
        json!([9_999_999_999_i64]),
    ] {
        let token = mint(&json!({ "user_id": user.id, "exp": exp }));

        assert_refused(&app, &token).await;
    }
}

async fn a_token_without_a_user_id_or_with_a_non_integer_one_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let exp = in_an_hour(&app);

    for claims in [
        json!({ "exp": exp }),
        json!({ "sub": user.id.to_string(), "exp": exp }),
        json!({ "user_id": user.id.to_string(), "exp": exp }),
        json!({ "user_id": null, "exp": exp }),
    ] {
        assert_refused(&app, &mint(&claims)).await;
    }
}

async fn an_expired_token_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    for exp in [now(&app) - 1, now(&app) - 3600, 0] {
        assert_refused(&app, &mint(&json!({ "user_id": user.id, "exp": exp }))).await;
    }
}

async fn a_fractional_exp_is_a_numeric_date_and_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    let token = mint(&json!({ "user_id": user.id, "exp": now(&app) as f64 + 60.5 }));

    assert_accepted(&app, &token).await;
}

async fn a_token_not_valid_before_a_later_time_is_a_401_until_then(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let token =
        mint(&json!({ "user_id": user.id, "exp": in_an_hour(&app), "nbf": now(&app) + 300 }));

    assert_refused(&app, &token).await;
    app.advance_clock(chrono::TimeDelta::seconds(300));
    assert_accepted(&app, &token).await;
}

async fn a_token_of_a_deleted_user_is_a_401(backend: Backend) {
    use diesel::prelude::*;
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    assert_accepted(&app, &user.token).await;
    // Posts that outlive alice: her reads must not find them.
    let post = app.create_post(&bob, "still here").await["id"].clone();
    let id = i32::try_from(user.id).expect("an i32 id");
    let mut conn = app.db();
    let deleted = diesel::delete(postapi::schema::users::table.find(id))
        .execute(&mut conn)
        .expect("delete the user");
    assert_eq!(deleted, 1);

    for path in [
        "/posts".to_owned(),
        "/posts?search=still".to_owned(),
        format!("/posts/{post}"),
        "/posts/999999".to_owned(),
    ] {
        let response = app.get(&path, user.token()).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "GET {path}");
        response.assert_unauthorized();
    }
    let body = json!({ "title": "from beyond", "content": "x" });
    let created = app.post("/posts", body, user.token()).await;
    created.assert_unauthorized();
    let titles: Vec<String> = app
        .get("/posts", bob.token())
        .await
        .json()
        .as_array()
        .expect("a list")
        .iter()
        .map(|post| post["title"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(titles, ["still here"], "nothing was created");
}

async fn a_token_for_a_user_id_that_never_existed_is_a_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    let token = mint(&json!({ "user_id": user.id + 1000, "exp": in_an_hour(&app) }));

    assert_refused(&app, &token).await;
}

async fn a_token_with_only_user_id_and_exp_as_python_jose_makes_it_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    let token = mint(&json!({ "user_id": user.id, "exp": in_an_hour(&app) }));

    assert_eq!(
        decode_part(parts(&token)[0]),
        json!({ "typ": "JWT", "alg": "HS256" })
    );
    assert_accepted(&app, &token).await;
}

async fn a_token_with_extra_claims_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    let token = mint(&json!({
        "user_id": user.id,
        "exp": in_an_hour(&app),
        "iat": now(&app),
        "sub": "alice@example.com",
    }));

    assert_accepted(&app, &token).await;
}

async fn the_issued_token_carries_user_id_sid_iat_and_exp_at_iat_plus_the_ttl(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.sign_up("alice@example.com").await;
    let issued_at = now(&app);

    let token = app.log_in("alice@example.com", PASSWORD).await;

    let [header, payload, _] = parts(&token);
    assert_eq!(decode_part(header)["alg"], "HS256");
    let claims = decode_part(payload);
    let mut keys: Vec<&str> = claims
        .as_object()
        .expect("claims")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["exp", "iat", "sid", "user_id"], "{claims}");
    assert!(claims["sid"].is_i64(), "an integer session id: {claims}");
    assert_eq!(claims["user_id"], user["id"]);
    assert!(claims["user_id"].is_i64(), "an integer user_id: {claims}");
    assert_eq!(claims["iat"], json!(issued_at));
    assert_eq!(claims["exp"], json!(issued_at + 30 * 60), "{claims}");
}

async fn the_issued_token_is_signed_with_the_secret_key_and_hs256(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@example.com").await;

    let token = app.log_in("alice@example.com", PASSWORD).await;

    assert_eq!(
        decode_part(parts(&token)[0]),
        json!({ "typ": "JWT", "alg": "HS256" })
    );
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    let verified = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(TEST_SECRET.as_bytes()).expect("an HMAC key"),
        &validation,
    );
    assert!(verified.is_ok(), "signed with SECRET_KEY: {verified:?}");
}

async fn a_server_configured_for_hs512_issues_and_accepts_hs512_tokens_only(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.algorithm = Algorithm::HS512).await;
    let user = app.user("alice@example.com").await;

    let header = decode_part(parts(&user.token)[0]);
    let claims = json!({ "user_id": user.id, "exp": in_an_hour(&app) });

    assert_eq!(header["alg"], "HS512", "{header}");
    assert_accepted(&app, &user.token).await;
    assert_accepted(&app, &mint_with(Algorithm::HS512, TEST_SECRET, &claims)).await;
    assert_refused(&app, &mint(&claims)).await;
}

async fn a_server_configured_for_hs384_issues_and_accepts_hs384_tokens(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| settings.algorithm = Algorithm::HS384).await;
    let user = app.user("alice@example.com").await;

    assert_eq!(decode_part(parts(&user.token)[0])["alg"], "HS384");
    assert_accepted(&app, &user.token).await;
}

async fn a_one_minute_token_works_at_59_seconds_and_is_refused_at_61(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.token_ttl = TimeDelta::minutes(1)
    })
    .await;
    let user = app.user("alice@example.com").await;

    assert_works_until_then_refused(&app, &user, TimeDelta::seconds(59)).await;
}

async fn a_default_token_works_at_29m59s_and_is_refused_at_30m01s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user("alice@example.com").await;

    assert_works_until_then_refused(&app, &user, TimeDelta::minutes(29) + TimeDelta::seconds(59))
        .await;
}

async fn a_new_login_after_expiry_gives_a_working_token(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.token_ttl = TimeDelta::minutes(1)
    })
    .await;
    let user = app.user("alice@example.com").await;
    app.advance_clock(TimeDelta::minutes(5));
    assert_refused(&app, &user.token).await;

    let fresh = app.log_in("alice@example.com", PASSWORD).await;

    assert_accepted(&app, &fresh).await;
}

async fn a_token_expires_for_real_on_the_wall_clock(backend: Backend) {
    let app = TestApp::spawn_with_real_clock(backend, |settings| {
        settings.token_ttl = TimeDelta::seconds(2)
    })
    .await;
    let user = app.user("alice@example.com").await;

    let at_once = app.get("/posts", user.token()).await;
    actix_web::rt::time::sleep(std::time::Duration::from_secs(3)).await;
    let later = app.get("/posts", user.token()).await;

    at_once.assert_status(StatusCode::OK);
    later.assert_unauthorized();
}

fn the_base64url_helpers_round_trip() {
    for text in [
        "",
        "f",
        "fo",
        "foo",
        "foob",
        "fooba",
        "foobar",
        "{\"alg\":\"none\"}",
    ] {
        assert_eq!(
            base64url_decode(&base64url_encode(text.as_bytes())),
            text.as_bytes()
        );
    }
    assert_eq!(base64url_encode(b"foobar"), "Zm9vYmFy");
    assert_eq!(base64url_encode(b"fo"), "Zm8");
    assert_eq!(base64url_encode(&[0xfb, 0xff]), "-_8");
}

pub fn tests() -> Vec<Trial> {
    let mut tests = backend_tests![
        a_request_without_an_authorization_header_is_a_401,
        a_basic_authorization_header_is_a_401,
        a_bearer_scheme_without_a_token_is_a_401,
        a_garbage_bearer_token_is_a_401,
        the_bearer_scheme_is_matched_regardless_of_case,
        the_middleware_refuses_before_any_handler_runs,
        an_alg_none_token_is_a_401,
        a_token_signed_with_hs512_is_a_401_when_the_server_uses_hs256,
        a_token_whose_header_claims_another_algorithm_than_its_signature_is_a_401,
        a_token_signed_with_another_key_is_a_401,
        a_tampered_payload_with_the_original_signature_is_a_401,
        a_token_with_a_stretched_expiry_and_the_original_signature_is_a_401,
        a_token_without_exp_is_a_401,
        a_token_with_a_string_exp_is_a_401,
        a_token_without_a_user_id_or_with_a_non_integer_one_is_a_401,
        an_expired_token_is_a_401,
        a_fractional_exp_is_a_numeric_date_and_accepted,
        a_token_not_valid_before_a_later_time_is_a_401_until_then,
        a_token_of_a_deleted_user_is_a_401,
        a_token_for_a_user_id_that_never_existed_is_a_401,
        a_token_with_only_user_id_and_exp_as_python_jose_makes_it_is_accepted,
        a_token_with_extra_claims_is_accepted,
        the_issued_token_carries_user_id_sid_iat_and_exp_at_iat_plus_the_ttl,
        the_issued_token_is_signed_with_the_secret_key_and_hs256,
        a_server_configured_for_hs512_issues_and_accepts_hs512_tokens_only,
        a_server_configured_for_hs384_issues_and_accepts_hs384_tokens,
        a_one_minute_token_works_at_59_seconds_and_is_refused_at_61,
        a_default_token_works_at_29m59s_and_is_refused_at_30m01s,
        a_new_login_after_expiry_gives_a_working_token,
        a_token_expires_for_real_on_the_wall_clock,
    ];
    tests.extend(plain_tests![the_base64url_helpers_round_trip]);
    tests
}
