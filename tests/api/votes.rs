//! `POST /vote`: adding and removing a vote, the counts posts show, what a
//! deleted post does to its votes, and racing voters.

use actix_web::http::StatusCode;
use diesel::prelude::*;
use futures_util::future::{join, join_all};
use postapi::schema::votes;
use serde_json::{Value, json};

use crate::helpers::{
    Backend, Bound, TestApp, TestDatabase, TestResponse, TestUser, Trial, alice_bob_and_her_post,
    backend_tests, field_required, past,
};

const ADDED: &str = "successfully added vote";
const DELETED: &str = "successfully deleted vote";

#[track_caller]
fn assert_message(response: &TestResponse, message: &str) {
    response.assert_status(StatusCode::CREATED);
    assert_eq!(response.json(), json!({ "message": message }));
}

fn id_of(post: &Value) -> i64 {
    post["id"].as_i64().expect("a post id")
}

/// The post as `GET /posts/{id}` shows it; panics unless 200.
async fn get_post(app: &TestApp, user: &TestUser, id: i64) -> Value {
    let response = app.get(&format!("/posts/{id}"), user.token()).await;
    response.assert_status(StatusCode::OK);
    response.json()
}

/// The vote count `GET /posts/{id}` shows.
async fn votes_shown(app: &TestApp, user: &TestUser, id: i64) -> Value {
    get_post(app, user, id).await["votes"].clone()
}

/// `GET /posts?limit=100`; panics unless 200.
async fn list_all(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let response = app.get("/posts?limit=100", user.token()).await;
    response.assert_status(StatusCode::OK);
    response.json().as_array().expect("a list").clone()
}

/// The vote count the listing shows for `id`.
async fn votes_listed(app: &TestApp, user: &TestUser, id: i64) -> Value {
    let posts = list_all(app, user).await;
    let post = posts
        .iter()
        .find(|post| id_of(post) == id)
        .unwrap_or_else(|| panic!("post {id} is listed: {posts:?}"));
    post["votes"].clone()
}

/// Rows in the `votes` table, read straight from the database.
fn stored_votes(app: &TestApp) -> i64 {
    let mut conn = app.db();
    votes::table
        .count()
        .get_result::<i64>(&mut conn)
        .expect("count the votes")
}

fn statuses(responses: &[TestResponse]) -> Vec<StatusCode> {
    responses.iter().map(|response| response.status).collect()
}

/// Asserts that `expected` of the `codes` are `status`.
#[track_caller]
fn assert_how_many(codes: &[StatusCode], status: StatusCode, expected: usize) {
    let count = codes.iter().filter(|code| **code == status).count();
    assert_eq!(count, expected, "{status}: {codes:?}");
}

/// Alice, logged in, and a post of hers: the app, Alice and the post's id.
async fn alice_and_a_post(backend: Backend, title: &str) -> (TestApp, TestUser, i64) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let id = id_of(&app.create_post(&alice, title).await);
    (app, alice, id)
}

/// Alice and Bob, logged in, and a post of Alice's: the app, Alice, Bob
/// and the post's id.
async fn alice_bob_and_a_post(backend: Backend, title: &str) -> (TestApp, TestUser, TestUser, i64) {
    let (app, alice, bob, post) = alice_bob_and_her_post(backend, title).await;
    (app, alice, bob, id_of(&post))
}

/// [`alice_bob_and_a_post`], with Bob's vote on the post cast.
async fn bob_has_voted(backend: Backend, title: &str) -> (TestApp, TestUser, TestUser, i64) {
    let (app, alice, bob, id) = alice_bob_and_a_post(backend, title).await;
    assert_message(&app.vote(&bob, id, 1).await, ADDED);
    (app, alice, bob, id)
}

/// Asserts post `id` shows `count` votes, read alone and in the listing.
async fn assert_votes_on(app: &TestApp, user: &TestUser, id: i64, count: i64) {
    assert_eq!(
        votes_shown(app, user, id).await,
        json!(count),
        "post {id} read alone"
    );
    assert_eq!(
        votes_listed(app, user, id).await,
        json!(count),
        "post {id} listed"
    );
}

/// Alice's posts `first` and `second`: the first with her vote and Bob's,
/// the second with Bob's. The app, Alice, Bob and the two ids.
async fn two_posts_and_three_votes(
    backend: Backend,
    first: &str,
    second: &str,
) -> (TestApp, TestUser, TestUser, i64, i64) {
    let (app, alice, bob, first) = alice_bob_and_a_post(backend, first).await;
    let second = id_of(&app.create_post(&alice, second).await);
    assert_message(&app.vote(&alice, first, 1).await, ADDED);
    assert_message(&app.vote(&bob, first, 1).await, ADDED);
    assert_message(&app.vote(&bob, second, 1).await, ADDED);
    (app, alice, bob, first, second)
}

/// Alice, `count` voters and a post of Alice's: the app, Alice, the voters
/// and the post's id.
async fn voters_and_a_post(
    backend: Backend,
    count: usize,
    title: &str,
) -> (TestApp, TestUser, Vec<TestUser>, i64) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let voters = voters(&app, count).await;
    let id = id_of(&app.create_post(&alice, title).await);
    (app, alice, voters, id)
}

/// `count` signed-up, logged-in users, voter0@example.com onwards.
async fn voters(app: &TestApp, count: usize) -> Vec<TestUser> {
    let mut voters = Vec::new();
    for n in 0..count {
        voters.push(app.user(&format!("voter{n}@example.com")).await);
    }
    voters
}

async fn voting_on_a_post_is_201_and_the_post_shows_one_vote_in_get_and_list(backend: Backend) {
    let (app, alice, bob, post) = alice_bob_and_her_post(backend, "vote for me").await;
    let id = id_of(&post);

    let response = app.vote(&bob, id, 1).await;

    assert_message(&response, ADDED);
    let shown = get_post(&app, &alice, id).await;
    let mut expected = post.clone();
    expected["votes"] = json!(1);
    assert_eq!(shown, expected, "only the count changes");
    assert_eq!(votes_listed(&app, &alice, id).await, json!(1));
    assert_eq!(stored_votes(&app), 1);
}

async fn voting_on_your_own_post_is_allowed(backend: Backend) {
    let (app, alice, id) = alice_and_a_post(backend, "mine").await;

    let response = app.vote(&alice, id, 1).await;

    assert_message(&response, ADDED);
    assert_eq!(votes_shown(&app, &alice, id).await, json!(1));
}

async fn voting_twice_on_the_same_post_is_409_and_the_count_stays_one(backend: Backend) {
    let (app, alice, bob, id) = bob_has_voted(backend, "popular").await;

    let response = app.vote(&bob, id, 1).await;

    response.assert_error(
        StatusCode::CONFLICT,
        json!(format!("user {} has already voted on post {id}", bob.id)),
    );
    assert_votes_on(&app, &alice, id, 1).await;
    assert_eq!(stored_votes(&app), 1);
}

async fn removing_your_vote_is_201_and_the_count_goes_back_to_zero(backend: Backend) {
    let (app, alice, bob, id) = bob_has_voted(backend, "meh").await;

    let response = app.vote(&bob, id, 0).await;

    assert_message(&response, DELETED);
    assert_votes_on(&app, &alice, id, 0).await;
    assert_eq!(stored_votes(&app), 0);
    assert_message(&app.vote(&bob, id, 1).await, ADDED);
    assert_eq!(
        votes_shown(&app, &alice, id).await,
        json!(1),
        "a removed vote may be cast again"
    );
}

async fn removing_a_vote_that_was_never_cast_is_404_vote_does_not_exist(backend: Backend) {
    let (app, alice, bob, id) = alice_bob_and_a_post(backend, "unvoted").await;
    assert_message(&app.vote(&alice, id, 1).await, ADDED);

    let response = app.vote(&bob, id, 0).await;

    response.assert_error(StatusCode::NOT_FOUND, json!("Vote does not exist"));
    assert_eq!(
        votes_shown(&app, &alice, id).await,
        json!(1),
        "alice's vote stays"
    );
}

async fn removing_a_vote_twice_is_404_the_second_time(backend: Backend) {
    let (app, alice, id) = alice_and_a_post(backend, "once").await;
    assert_message(&app.vote(&alice, id, 1).await, ADDED);
    assert_message(&app.vote(&alice, id, 0).await, DELETED);

    let response = app.vote(&alice, id, 0).await;

    response.assert_error(StatusCode::NOT_FOUND, json!("Vote does not exist"));
}

async fn voting_on_a_missing_post_is_404_post_does_not_exist(backend: Backend) {
    let (app, alice, existing) = alice_and_a_post(backend, "exists").await;
    let missing = existing + 1000;

    let add = app.vote(&alice, missing, 1).await;
    let remove = app.vote(&alice, missing, 0).await;

    for response in [&add, &remove] {
        response.assert_error(
            StatusCode::NOT_FOUND,
            json!(format!("Post with id: {missing} does not exist")),
        );
    }
    assert_eq!(stored_votes(&app), 0);
}

async fn a_dir_other_than_0_or_1_is_422_at_body_dir(backend: Backend) {
    let (app, alice, id) = alice_and_a_post(backend, "strict").await;
    let not_an_integer = json!({ "loc": ["body", "dir"], "msg": "value is not a valid integer", "type": "type_error.integer" });
    let cases = [
        (json!(2), past(["body", "dir"], Bound::Le(1))),
        (json!(-1), past(["body", "dir"], Bound::Ge(0))),
        (json!("1"), not_an_integer.clone()),
        (json!(1.5), not_an_integer.clone()),
        (json!(true), not_an_integer),
        (
            json!(null),
            json!({
                "loc": ["body", "dir"], "msg": "none is not an allowed value", "type": "type_error.none.not_allowed"
            }),
        ),
    ];

    for (dir, error) in cases {
        let response = app
            .post("/vote", json!({ "post_id": id, "dir": dir }), alice.token())
            .await;

        response.assert_error_for(
            format!("dir {dir}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!([error]),
        );
    }
    assert_eq!(stored_votes(&app), 0);
    assert_eq!(votes_shown(&app, &alice, id).await, json!(0));
}

async fn missing_or_non_integer_vote_fields_are_422(backend: Backend) {
    let (app, alice, id) = alice_and_a_post(backend, "strict").await;
    let cases = [
        (
            json!({}),
            json!([field_required("post_id"), field_required("dir")]),
        ),
        (json!({ "dir": 1 }), json!([field_required("post_id")])),
        (json!({ "post_id": id }), json!([field_required("dir")])),
        (
            json!({ "post_id": "one", "dir": 1 }),
            json!([{ "loc": ["body", "post_id"], "msg": "value is not a valid integer", "type": "type_error.integer" }]),
        ),
        (
            json!({ "post_id": 2_147_483_648_i64, "dir": 1 }),
            json!([past(["body", "post_id"], Bound::Le(2_147_483_647))]),
        ),
    ];

    for (body, errors) in cases {
        let response = app.post("/vote", body.clone(), alice.token()).await;

        response.assert_error_for(&body, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    assert_eq!(stored_votes(&app), 0);
}

async fn a_malformed_or_non_object_vote_body_is_422_at_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    app.assert_bad_json_refused("/vote", &alice, "{\"post_id\": 1,", json!([1, 1]))
        .await;
}

async fn voting_without_a_valid_token_is_401_and_records_nothing(backend: Backend) {
    let (app, alice, id) = alice_and_a_post(backend, "guarded").await;
    let body = json!({ "post_id": id, "dir": 1 });

    let responses = [
        ("no token", app.post("/vote", body.clone(), None).await),
        (
            "no token, slash",
            app.post("/vote/", body.clone(), None).await,
        ),
        (
            "no token, invalid body",
            app.post("/vote", json!({ "dir": 5 }), None).await,
        ),
        (
            "bad token",
            app.post("/vote", body.clone(), Some("not.a.jwt")).await,
        ),
    ];

    for (case, response) in &responses {
        response.assert_status_for(case, StatusCode::UNAUTHORIZED);
        response.assert_unauthorized();
    }
    assert_eq!(stored_votes(&app), 0);
    assert_eq!(votes_shown(&app, &alice, id).await, json!(0));
}

async fn vote_with_a_trailing_slash_works_without_a_redirect(backend: Backend) {
    let (app, alice, id) = alice_and_a_post(backend, "slash").await;

    let added = app
        .post("/vote/", json!({ "post_id": id, "dir": 1 }), alice.token())
        .await;
    let deleted = app
        .post("/vote/", json!({ "post_id": id, "dir": 0 }), alice.token())
        .await;

    assert_eq!(added.header("location"), None);
    assert_message(&added, ADDED);
    assert_eq!(deleted.header("location"), None);
    assert_message(&deleted, DELETED);
    assert_eq!(stored_votes(&app), 0);
}

async fn other_methods_on_vote_are_405_once_authenticated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;

    let get = app.get("/vote", alice.token()).await;
    let delete = app.delete("/vote", alice.token()).await;

    for response in [&get, &delete] {
        response.assert_error(StatusCode::METHOD_NOT_ALLOWED, json!("Method Not Allowed"));
    }
}

async fn votes_of_several_users_are_counted_per_post_and_each_post_is_listed_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let alice = app.user("alice@example.com").await;
    let bob = app.user("bob@example.com").await;
    let carol = app.user("carol@example.com").await;
    let first = id_of(&app.create_post(&alice, "first").await);
    let second = id_of(&app.create_post(&bob, "second").await);
    let third = id_of(&app.create_post(&carol, "third").await);
    for voter in [&alice, &bob, &carol] {
        assert_message(&app.vote(voter, first, 1).await, ADDED);
    }
    assert_message(&app.vote(&alice, second, 1).await, ADDED);

    let posts = list_all(&app, &bob).await;
    let page = app.get("/posts?limit=2", bob.token()).await.json();

    let counts: Vec<(i64, Value)> = posts
        .iter()
        .map(|post| (id_of(post), post["votes"].clone()))
        .collect();
    assert_eq!(
        counts,
        vec![(third, json!(0)), (second, json!(1)), (first, json!(3))]
    );
    let page_ids: Vec<i64> = page.as_array().expect("a list").iter().map(id_of).collect();
    assert_eq!(
        page_ids,
        vec![third, second],
        "limit counts posts, not votes"
    );
    assert_eq!(votes_shown(&app, &bob, first).await, json!(3));
    assert_eq!(votes_shown(&app, &bob, second).await, json!(1));
    assert_eq!(votes_shown(&app, &bob, third).await, json!(0));
    assert_eq!(stored_votes(&app), 4);
}

async fn removing_your_vote_leaves_other_users_votes(backend: Backend) {
    let (app, alice, bob, id, other) = two_posts_and_three_votes(backend, "shared", "other").await;

    let response = app.vote(&bob, id, 0).await;

    assert_message(&response, DELETED);
    assert_eq!(votes_shown(&app, &alice, id).await, json!(1));
    assert_eq!(votes_shown(&app, &alice, other).await, json!(1));
    let again = app.vote(&alice, id, 1).await;
    again.assert_status_for("alice's vote is still there", StatusCode::CONFLICT);
}

async fn deleting_a_post_deletes_its_votes(backend: Backend) {
    let (app, alice, bob, doomed, kept) =
        two_posts_and_three_votes(backend, "doomed", "kept").await;
    assert_eq!(stored_votes(&app), 3);

    let response = app.delete(&format!("/posts/{doomed}"), alice.token()).await;

    response.assert_status(StatusCode::NO_CONTENT);
    assert_eq!(
        stored_votes(&app),
        1,
        "only the vote on the kept post remains"
    );
    assert_eq!(votes_shown(&app, &alice, kept).await, json!(1));
    for dir in [1, 0] {
        let on_deleted = app.vote(&bob, doomed, dir).await;
        on_deleted.assert_error_for(
            format!("dir {dir}"),
            StatusCode::NOT_FOUND,
            json!(format!("Post with id: {doomed} does not exist")),
        );
    }
    let recreated = id_of(&app.create_post(&alice, "doomed").await);
    assert_ne!(recreated, doomed, "ids are not reused");
    assert_eq!(votes_shown(&app, &alice, recreated).await, json!(0));
    assert_message(&app.vote(&bob, recreated, 1).await, ADDED);
}

async fn a_deleted_voters_votes_come_off_the_counts(backend: Backend) {
    let (app, alice, bob, first) = alice_bob_and_a_post(backend, "first").await;
    let second = id_of(&app.create_post(&alice, "second").await);
    for post in [first, second] {
        assert_message(&app.vote(&alice, post, 1).await, ADDED);
        assert_message(&app.vote(&bob, post, 1).await, ADDED);
    }
    let bob_id = i32::try_from(bob.id).expect("an i32 id");

    let deleted = diesel::delete(postapi::schema::users::table.find(bob_id))
        .execute(&mut app.db())
        .expect("delete bob");

    assert_eq!(deleted, 1);
    assert_eq!(stored_votes(&app), 2, "bob's votes went with him");
    for post in [first, second] {
        assert_votes_on(&app, &alice, post, 1).await;
    }
}

/// A database holding votes from before the vote-count migration: the
/// migration counts them into their posts.
async fn the_vote_count_migration_counts_votes_already_there(backend: Backend) {
    use diesel::connection::SimpleConnection;
    use diesel_migrations::{FileBasedMigrations, MigrationHarness};
    use postapi::db::DbConnection;
    use postapi::db::pool::ConnectionManager;

    let database = TestDatabase::create(&backend);
    let mut conn = ConnectionManager::new(database.url().clone())
        .establish()
        .expect("open the database");
    let directory = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let migrations = FileBasedMigrations::from_path(format!(
        "{}/migrations/{directory}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the migrations");
    let before = "INSERT INTO users (email, password_hash, created_at) VALUES \
            ('a@example.com', 'x', CURRENT_TIMESTAMP), ('b@example.com', 'x', CURRENT_TIMESTAMP); \
         INSERT INTO posts (title, content, owner_id) VALUES ('two', '', 1), ('one', '', 1), ('none', '', 2); \
         INSERT INTO votes (user_id, post_id) VALUES (1, 1), (2, 1), (2, 2);";
    match &mut conn {
        DbConnection::Postgres(pg) => {
            pg.run_next_migration(migrations.clone()).expect("tables");
            pg.run_next_migration(migrations.clone()).expect("search");
            pg.batch_execute(before).expect("rows before the count");
            pg.run_pending_migrations(migrations).expect("the rest");
        }
        DbConnection::Sqlite(sqlite) => {
            sqlite
                .run_next_migration(migrations.clone())
                .expect("tables");
            sqlite
                .run_next_migration(migrations.clone())
                .expect("search");
            sqlite.batch_execute(before).expect("rows before the count");
            sqlite.run_pending_migrations(migrations).expect("the rest");
        }
    }

    let counts: Vec<(String, i64)> = postapi::schema::posts::table
        .select((
            postapi::schema::posts::title,
            postapi::schema::posts::vote_count,
        ))
        .order_by(postapi::schema::posts::id)
        .load(&mut conn)
        .expect("the counts");
    assert_eq!(
        counts,
        [("two".into(), 2), ("one".into(), 1), ("none".into(), 0)]
    );
}

async fn sixteen_racing_identical_votes_give_one_201_and_fifteen_409s(backend: Backend) {
    let (app, alice, bob, id) = alice_bob_and_a_post(backend, "contested").await;

    let responses = join_all((0..16).map(|_| app.vote(&bob, id, 1))).await;

    let codes = statuses(&responses);
    assert!(
        !codes.contains(&StatusCode::INTERNAL_SERVER_ERROR),
        "no 500: {codes:?}"
    );
    assert_how_many(&codes, StatusCode::CREATED, 1);
    assert_how_many(&codes, StatusCode::CONFLICT, 15);
    for response in &responses {
        if response.status == StatusCode::CREATED {
            assert_eq!(response.json(), json!({ "message": ADDED }));
        } else {
            assert_eq!(
                response.json(),
                json!({ "detail": format!("user {} has already voted on post {id}", bob.id) })
            );
        }
    }
    assert_votes_on(&app, &alice, id, 1).await;
    assert_eq!(stored_votes(&app), 1);
}

async fn sixteen_racing_removals_of_one_vote_give_one_201_and_fifteen_404s(backend: Backend) {
    let (app, alice, bob, id) = bob_has_voted(backend, "contested").await;

    let responses = join_all((0..16).map(|_| app.vote(&bob, id, 0))).await;

    let codes = statuses(&responses);
    assert_how_many(&codes, StatusCode::CREATED, 1);
    assert_how_many(&codes, StatusCode::NOT_FOUND, 15);
    for response in responses
        .iter()
        .filter(|response| response.status == StatusCode::NOT_FOUND)
    {
        assert_eq!(response.json(), json!({ "detail": "Vote does not exist" }));
    }
    assert_votes_on(&app, &alice, id, 0).await;
    assert_eq!(stored_votes(&app), 0);
}

async fn racing_votes_of_different_users_are_all_counted(backend: Backend) {
    let (app, alice, voters, id) = voters_and_a_post(backend, 8, "popular").await;

    let responses = join_all(voters.iter().map(|voter| app.vote(voter, id, 1))).await;

    for response in &responses {
        assert_message(response, ADDED);
    }
    assert_votes_on(&app, &alice, id, 8).await;
    assert_eq!(stored_votes(&app), 8);
}

async fn votes_racing_a_deletion_of_their_post_are_201_or_404_and_leave_no_votes(backend: Backend) {
    let (app, alice, voters, id) = voters_and_a_post(backend, 6, "short-lived").await;
    let path = format!("/posts/{id}");

    let (deleted, votes) = join(
        app.delete(&path, alice.token()),
        join_all(voters.iter().map(|voter| app.vote(voter, id, 1))),
    )
    .await;

    deleted.assert_status(StatusCode::NO_CONTENT);
    for response in &votes {
        match response.status {
            StatusCode::CREATED => assert_eq!(response.json(), json!({ "message": ADDED })),
            StatusCode::NOT_FOUND => assert_eq!(
                response.json(),
                json!({ "detail": format!("Post with id: {id} does not exist") })
            ),
            other => panic!(
                "a vote racing a deletion is 201 or 404, not {other}: {}",
                response.text()
            ),
        }
    }
    assert_eq!(stored_votes(&app), 0, "no vote outlives its post");
}

pub fn tests() -> Vec<Trial> {
    backend_tests![
        voting_on_a_post_is_201_and_the_post_shows_one_vote_in_get_and_list,
        voting_on_your_own_post_is_allowed,
        voting_twice_on_the_same_post_is_409_and_the_count_stays_one,
        removing_your_vote_is_201_and_the_count_goes_back_to_zero,
        removing_a_vote_that_was_never_cast_is_404_vote_does_not_exist,
        removing_a_vote_twice_is_404_the_second_time,
        voting_on_a_missing_post_is_404_post_does_not_exist,
        a_dir_other_than_0_or_1_is_422_at_body_dir,
        missing_or_non_integer_vote_fields_are_422,
        a_malformed_or_non_object_vote_body_is_422_at_the_body,
        voting_without_a_valid_token_is_401_and_records_nothing,
        vote_with_a_trailing_slash_works_without_a_redirect,
        other_methods_on_vote_are_405_once_authenticated,
        votes_of_several_users_are_counted_per_post_and_each_post_is_listed_once,
        removing_your_vote_leaves_other_users_votes,
        deleting_a_post_deletes_its_votes,
        a_deleted_voters_votes_come_off_the_counts,
        the_vote_count_migration_counts_votes_already_there,
        sixteen_racing_identical_votes_give_one_201_and_fifteen_409s,
        sixteen_racing_removals_of_one_vote_give_one_201_and_fifteen_404s,
        racing_votes_of_different_users_are_all_counted,
        votes_racing_a_deletion_of_their_post_are_201_or_404_and_leave_no_votes,
    ]
}
