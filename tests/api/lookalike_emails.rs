//! Look-alike addresses (UTS #39) at `POST /users`: a sign-up that reads like
//! an existing account is a 409 like a duplicate, one that mixes scripts
//! within its local part or a domain label a 422, plain ASCII exactly as
//! before; and the keys of rows from before the rules, set at start-up.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use futures_util::future::join_all;
use postapi::db::pool::connect_and_migrate;
use postapi::schema::users;
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, TestApp, TestResponse, Trial, backend_tests, test_settings,
};

const ALICE: &str = "alice@example.com";
/// `аӏісе@example.com`: every letter of the local part Cyrillic.
const CYRILLIC_ALICE: &str = "\u{430}\u{4cf}\u{456}\u{441}\u{435}@example.com";
/// `müller@example.de`, the ü precomposed.
const MULLER: &str = "m\u{fc}ller@example.de";
/// `用例@例子.中国`: no character with a prototype, so its own key. (户 would
/// not do: its prototype is the variant 戶.)
const CHINESE: &str = "\u{7528}\u{4f8b}@\u{4f8b}\u{5b50}.\u{4e2d}\u{56fd}";
/// `почта@пример.рф`: all Cyrillic.
const POCHTA: &str =
    "\u{43f}\u{43e}\u{447}\u{442}\u{430}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}";

/// Asserts the 409 a duplicate of `email` gets, word for word.
#[track_caller]
fn assert_taken(response: &TestResponse, email: &str) {
    response.assert_error_for(
        email,
        StatusCode::CONFLICT,
        json!(format!("User with email: {email} already exists")),
    );
}

/// Asserts the 422 for an address that mixes scripts within a part.
#[track_caller]
fn assert_mixes_scripts(response: &TestResponse, email: &str) {
    response.assert_status_for(email, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        response.detail(),
        json!([{
            "loc": ["body", "email"],
            "msg": "value is not a valid email address: its local part or a domain label mixes scripts",
            "type": "value_error.email",
        }]),
        "{email}"
    );
}

/// The look-alike key stored for `email`: none where it is the address.
fn stored_key(app: &TestApp, email: &str) -> Option<String> {
    users::table
        .filter(users::email.eq(email))
        .select(users::email_key)
        .first(&mut app.db())
        .unwrap_or_else(|e| panic!("the key of {email}: {e}"))
}

/// A user row as an older postapi, or another tool (the course app), leaves
/// it: no key.
fn insert_as_before_the_key(app: &TestApp, email: &str) {
    insert_with_key(app, email, None);
}

fn insert_with_key(app: &TestApp, email: &str, key: Option<&str>) {
    diesel::insert_into(users::table)
        .values((
            users::email.eq(email),
            users::email_key.eq(key),
            users::password_hash.eq("not a hash"),
        ))
        .execute(&mut app.db())
        .unwrap_or_else(|e| panic!("insert {email}: {e}"));
}

/// Runs what start-up runs on the app's database (migrations, then the keys)
/// from a second pool, as a restarted server would.
fn start_up_again(app: &TestApp) {
    let settings = test_settings(app.database().url().clone());
    drop(connect_and_migrate(&settings).expect("start-up's database set-up succeeds"));
}

async fn a_cyrillic_a_inside_a_latin_local_part_or_domain_label_is_a_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    for email in [
        "\u{430}lice@example.com", // аlice
        "alice@ex\u{430}mple.com", // exаmple
    ] {
        let response = app.try_sign_up(email, PASSWORD).await;

        assert_mixes_scripts(&response, email);
    }
}

async fn a_mixed_script_part_is_a_422_even_when_no_account_reads_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let local = app.try_sign_up("\u{430}lice@example.com", PASSWORD).await;
    let label = app.try_sign_up("mail@example.p\u{444}", PASSWORD).await; // pф

    assert_mixes_scripts(&local, "\u{430}lice@example.com");
    assert_mixes_scripts(&label, "mail@example.p\u{444}");
    app.sign_up(ALICE).await;
}

async fn a_whole_cyrillic_look_alike_local_part_is_a_409_like_a_duplicate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    let response = app.try_sign_up(CYRILLIC_ALICE, PASSWORD).await;

    assert_taken(&response, CYRILLIC_ALICE);
}

async fn a_whole_cyrillic_look_alike_domain_label_is_a_409(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("alice@apple.com").await;
    let email = "alice@\u{430}\u{440}\u{440}\u{4cf}\u{435}.com"; // аррӏе

    let response = app.try_sign_up(email, PASSWORD).await;

    assert_taken(&response, email);
}

async fn a_turkish_dotted_or_dotless_i_cannot_sign_up_beside_a_plain_i(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    // alİce is stored lower-cased, as ali̇ce: an i and U+0307.
    let dotted = app.try_sign_up("al\u{130}ce@example.com", PASSWORD).await;
    let dotless = app.try_sign_up("al\u{131}ce@example.com", PASSWORD).await;

    assert_taken(&dotted, "ali\u{307}ce@example.com");
    assert_taken(&dotless, "al\u{131}ce@example.com");
    app.log_in(ALICE, PASSWORD).await;
}

async fn compatibility_forms_and_invisible_characters_read_as_the_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;
    app.sign_up("modem@example.com").await;

    for (email, reads_as) in [
        ("\u{ff41}lice@example.com", ALICE),  // fullwidth ａ
        ("ali\u{200b}ce@example.com", ALICE), // a zero-width space
        ("\u{1d426}odem@example.com", "modem@example.com"), // mathematical bold 𝐦
    ] {
        let response = app.try_sign_up(email, PASSWORD).await;

        response.assert_status_for(
            format!("{email:?} reads as {reads_as}"),
            StatusCode::CONFLICT,
        );
    }
}

async fn ascii_addresses_only_the_full_skeleton_would_join_all_get_accounts(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for email in [
        "modem@example.com",
        "modern@example.com",
        "alice1@example.com",
        "alicel@example.com",
        "bob0@example.com",
        "bobo@example.com",
    ] {
        let user = app.sign_up(email).await;

        assert_eq!(user["email"], email);
        assert_eq!(
            stored_key(&app, email),
            None,
            "an ASCII address is its own key"
        );
    }
}

async fn single_script_non_ascii_addresses_get_accounts_and_log_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    for email in [
        MULLER,
        POCHTA,
        "mail@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
    ] {
        let user = app.sign_up(email).await;

        assert_eq!(user["email"], email);
        app.log_in(email, PASSWORD).await;
    }
    app.log_in("M\u{dc}LLER@example.de", PASSWORD).await;
}

async fn a_look_alike_is_refused_whichever_of_the_two_signed_up_first(backend: Backend) {
    let pairs = [
        (ALICE, CYRILLIC_ALICE),
        // ü precomposed, and u followed by a combining diaeresis.
        (MULLER, "mu\u{308}ller@example.de"),
        // papa in Latin and in Cyrillic letters, at an all-Cyrillic domain.
        (
            "papa@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
            "\u{440}\u{430}\u{440}\u{430}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}",
        ),
        (
            "alice@apple.com",
            "alice@\u{430}\u{440}\u{440}\u{4cf}\u{435}.com",
        ),
    ];
    for reversed in [false, true] {
        let app = TestApp::spawn(backend.clone()).await;
        for (one, other) in pairs {
            let (first, second) = if reversed { (other, one) } else { (one, other) };

            app.sign_up(first).await;
            let response = app.try_sign_up(second, PASSWORD).await;

            assert_taken(&response, second);
        }
    }
}

async fn a_cyrillic_look_alike_of_a_cyrillic_address_that_mixes_in_latin_is_a_422(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(POCHTA).await;
    // пoчта with a Latin o.
    let email =
        "\u{43f}o\u{447}\u{442}\u{430}@\u{43f}\u{440}\u{438}\u{43c}\u{435}\u{440}.\u{440}\u{444}";

    let response = app.try_sign_up(email, PASSWORD).await;

    assert_mixes_scripts(&response, email);
}

async fn racing_look_alike_sign_ups_give_one_201_and_409s(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let variants = [
        ALICE,
        CYRILLIC_ALICE,
        "al\u{131}ce@example.com",
        "al\u{130}ce@example.com",
        "\u{ff41}lice@example.com",
        "ali\u{200b}ce@example.com",
        " ALICE@example.com",
        "al\u{131}ce@EXAMPLE.com",
    ];

    let responses = join_all(
        variants
            .iter()
            .map(|email| app.try_sign_up(email, PASSWORD)),
    )
    .await;

    let statuses: Vec<StatusCode> = responses.iter().map(|r| r.status).collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        (created, conflicts),
        (1, variants.len() - 1),
        "{statuses:?}"
    );
}

async fn login_matches_the_address_as_typed_never_a_look_alike(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;

    let look_alike = app.try_log_in(CYRILLIC_ALICE, PASSWORD).await;

    look_alike.assert_error(StatusCode::FORBIDDEN, json!("Invalid Credentials"));
    app.log_in(" Alice@Example.com ", PASSWORD).await;
}

async fn start_up_gives_rows_from_before_the_key_their_look_alike_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    insert_as_before_the_key(&app, CYRILLIC_ALICE);
    insert_as_before_the_key(&app, "bob@example.com");
    insert_as_before_the_key(&app, CHINESE);
    // As if an older Unicode table had keyed it otherwise.
    insert_with_key(&app, MULLER, Some("an older key"));

    start_up_again(&app);
    let response = app.try_sign_up(ALICE, PASSWORD).await;

    assert_eq!(stored_key(&app, CYRILLIC_ALICE).as_deref(), Some(ALICE));
    assert_eq!(
        stored_key(&app, MULLER).as_deref(),
        Some("mu\u{308}ller@example.de")
    );
    assert_eq!(stored_key(&app, "bob@example.com"), None);
    assert_eq!(stored_key(&app, CHINESE), None, "its own key");
    assert_taken(&response, ALICE);
}

async fn start_up_leaves_a_look_alike_pair_from_before_the_key_as_it_is(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(ALICE).await;
    insert_as_before_the_key(&app, CYRILLIC_ALICE);

    start_up_again(&app);

    assert_eq!(stored_key(&app, ALICE), None);
    assert_eq!(stored_key(&app, CYRILLIC_ALICE), None);
    app.log_in(ALICE, PASSWORD).await;
    let again = app.try_sign_up("al\u{131}ce@example.com", PASSWORD).await;
    assert_taken(&again, "al\u{131}ce@example.com");
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        a_cyrillic_a_inside_a_latin_local_part_or_domain_label_is_a_422,
        a_mixed_script_part_is_a_422_even_when_no_account_reads_alike,
        a_whole_cyrillic_look_alike_local_part_is_a_409_like_a_duplicate,
        a_whole_cyrillic_look_alike_domain_label_is_a_409,
        a_turkish_dotted_or_dotless_i_cannot_sign_up_beside_a_plain_i,
        compatibility_forms_and_invisible_characters_read_as_the_address,
        ascii_addresses_only_the_full_skeleton_would_join_all_get_accounts,
        single_script_non_ascii_addresses_get_accounts_and_log_in,
        a_look_alike_is_refused_whichever_of_the_two_signed_up_first,
        a_cyrillic_look_alike_of_a_cyrillic_address_that_mixes_in_latin_is_a_422,
        racing_look_alike_sign_ups_give_one_201_and_409s,
        login_matches_the_address_as_typed_never_a_look_alike,
        start_up_gives_rows_from_before_the_key_their_look_alike_key,
        start_up_leaves_a_look_alike_pair_from_before_the_key_as_it_is,
    ]
}
