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
    users (id) {
        id -> Int4,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    votes (user_id, post_id) {
        user_id -> Int4,
        post_id -> Int4,
    }
}

diesel::joinable!(posts -> users (owner_id));
diesel::joinable!(votes -> posts (post_id));
diesel::joinable!(votes -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(posts, users, votes,);
