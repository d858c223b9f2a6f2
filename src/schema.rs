// @generated automatically by Diesel CLI.

diesel::table! {
    posts (id) {
        id -> Int4,
        title -> Text,
        content -> Text,
        published -> Bool,
        created_at -> Timestamp,
        owner_id -> Int4,
        vote_count -> Int8,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Int4,
        expires_at -> Timestamp,
        spent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Int4,
        user_id -> Int4,
        created_at -> Timestamp,
        last_used_at -> Timestamp,
        expires_at -> Timestamp,
        revoked_at -> Nullable<Timestamp>,
        user_agent -> Nullable<Text>,
        client_addr -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Int4,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        tokens_valid_after -> Nullable<Timestamp>,
        email_key -> Nullable<Text>,
    }
}

diesel::table! {
    votes (user_id, post_id) {
        user_id -> Int4,
        post_id -> Int4,
    }
}

diesel::joinable!(posts -> users (owner_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(votes -> posts (post_id));
diesel::joinable!(votes -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(posts, refresh_tokens, sessions, users, votes,);
