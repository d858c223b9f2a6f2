//! `POST /login`: the OAuth2 password form (urlencoded or multipart, as
//! FastAPI's `OAuth2PasswordRequestForm` takes it) or JSON; each success
//! opens a session. `POST /login/refresh`: a refresh token for a new pair.

use actix_multipart::Multipart;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::USER_AGENT;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use secrecy::zeroize::{Zeroize, Zeroizing};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::password::{MAX_COST_ABOVE_CONFIGURED, Verdict, take_password};
use crate::auth::sessions::{Origin, TokenPair};
use crate::auth::throttle::LoginAttempt;
use crate::auth::{LoginThrottle, PasswordHasher, SessionService};
use crate::client_addr::client_address;
use crate::db::{self, DbPool};
use crate::error::{AppError, FieldError};
use crate::extract::{
    BodyFuture, BodyKind, body_kind, last_value, parse_json, read_body, read_request,
};
use crate::routes::schemas::{
    MalformedBody, PayloadTooLarge, TooManyRequests, Unauthorized, Unavailable,
};
use crate::routes::users::{EXAMPLE_EMAIL, EXAMPLE_PASSWORD};
use crate::routes::{ErrorBody, ValidationErrorBody};
use crate::store;
use crate::validation::{BodyFields, json_object};

/// What a login or a refresh answers. The course's clients read the first
/// two fields and ignore the rest.
#[derive(Serialize, ToSchema)]
pub struct Token {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    #[schema(example = "bearer")]
    pub token_type: String,
    /// For `POST /login/refresh`, once: each refresh answers a new one.
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub refresh_token: SecretString,
    /// The access token's lifetime, in seconds.
    #[schema(example = 1800)]
    pub expires_in: i64,
}

impl From<TokenPair> for Token {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "bearer".into(),
            refresh_token: pair.refresh_token,
            expires_in: pair.expires_in,
        }
    }
}

/// The one place a refresh token leaves as text: the answer that hands it out.
fn expose<S: serde::Serializer>(secret: &SecretString, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// The JSON form of the credentials: `email` and `password`, or `username`
/// and `password` when there is no `email` (as `from_json` reads them).
pub struct LoginJson;

impl PartialSchema for LoginJson {
    fn schema() -> RefOr<Schema> {
        let credentials = |name: &str, example: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(name, string().examples([example]))
                .property("password", string().examples([EXAMPLE_PASSWORD]))
                .required(name)
                .required("password")
        };
        let mut by_username = credentials("username", EXAMPLE_EMAIL).build();
        // utoipa has no `not` keyword; OpenAPI 3.1 does.
        by_username.extensions = Some(Extensions::from_iter([(
            "not",
            json!({ "required": ["email"] }),
        )]));
        let either = OneOfBuilder::new()
            .item(credentials("email", EXAMPLE_EMAIL))
            .item(by_username)
            .build();
        RefOr::T(Schema::OneOf(either))
    }
}

impl ToSchema for LoginJson {}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

/// A form field: an empty one counts as missing, as in FastAPI.
fn form_field(example: &str) -> Object {
    string().min_length(Some(1)).examples([example]).build()
}

fn form_username() -> Object {
    form_field(EXAMPLE_EMAIL)
}

fn form_password() -> Object {
    form_field(EXAMPLE_PASSWORD)
}

/// The OAuth2 password form, as Swagger's Authorize button sends it.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the request body; parsing is by hand below
pub struct LoginForm {
    /// The email.
    #[schema(schema_with = form_username)]
    username: String,
    #[schema(schema_with = form_password)]
    password: String,
    /// Ignored.
    #[schema(required = false, schema_with = string)]
    grant_type: String,
}

/// The credentials of a login request, whatever its encoding.
///
/// The password is a `SecretString` as soon as it is parsed: Debug shows
/// `[REDACTED]`, and it is wiped when dropped, after verification. The
/// strings it was taken from are wiped too (see `FormFields` and
/// `from_json`). What is not wiped, because it is not ours: the request
/// body as actix read it (`Bytes`), actix-multipart's buffer, the temporary
/// strings serde_urlencoded makes to percent-decode a value and serde_json's
/// scratch buffer for a string with escapes, anything left of a body that
/// fails to parse, and the kernel's socket buffers.
#[derive(Debug)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

/// Decoded form fields, in order. Every value is wiped when they are
/// dropped: the password's (if not already taken), repeated ones, and
/// anything else a client sent (Swagger sends a `client_secret`).
struct FormFields(Vec<(String, String)>);

impl Drop for FormFields {
    fn drop(&mut self) {
        for (_, value) in &mut self.0 {
            value.zeroize();
        }
    }
}

impl FromRequest for Credentials {
    type Error = AppError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        read_request(req, payload, |req, mut payload| async move {
            let essence = req
                .mime_type()
                .ok()
                .flatten()
                .map(|mime| mime.essence_str().to_owned());
            match essence.as_deref() {
                Some("application/x-www-form-urlencoded") => {
                    let bytes = read_body(&req, &mut payload).await?;
                    let pairs = serde_urlencoded::from_bytes(&bytes)
                        .map_err(|_| AppError::malformed_body())?;
                    from_form_fields(FormFields(pairs))
                }
                Some("multipart/form-data") => {
                    from_form_fields(multipart_fields(&req, &mut payload).await?)
                }
                _ => {
                    let bytes = read_body(&req, &mut payload).await?;
                    // FastAPI reads the form fields of any body that is not a
                    // form as absent; JSON is ours, by its content type or
                    // when none is given.
                    if bytes.is_empty() || body_kind(&req) == BodyKind::Other {
                        from_form_fields(FormFields(Vec::new()))
                    } else {
                        from_json(parse_json(&bytes)?)
                    }
                }
            }
        })
    }
}

fn from_form_fields(mut fields: FormFields) -> Result<Credentials, AppError> {
    // FastAPI takes an empty form field as a missing one; of repeated
    // fields, the last counts.
    let mut errors = Vec::new();
    let username = last_value(&fields.0, "username")
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            errors.push(FieldError::missing(&["body", "username"]));
            None
        });
    let password = fields
        .0
        .iter_mut()
        .rev()
        .find(|(name, _)| name == "password")
        .filter(|(_, value)| !value.is_empty())
        .map(|(_, value)| take_password(value))
        .or_else(|| {
            errors.push(FieldError::missing(&["body", "password"]));
            None
        });
    match (username, password) {
        (Some(username), Some(password)) => Ok(Credentials { username, password }),
        _ => Err(AppError::Validation(errors)),
    }
}

/// Reads the credentials, then takes the password's text out of the body
/// (wiping it there), accepted or not, before the body is dropped.
fn from_json(mut body: Value) -> Result<Credentials, AppError> {
    let username = json_object(&body).and_then(|object| {
        let mut fields = BodyFields::new(object);
        let name = if object.contains_key("email") || !object.contains_key("username") {
            "email"
        } else {
            "username"
        };
        let username = fields.string(name).map(str::to_owned);
        let password = fields.string("password");
        fields.finish(username.filter(|_| password.is_some()))
    });
    let password = match body.get_mut("password") {
        Some(Value::String(text)) => Some(take_password(text)),
        _ => None,
    };
    let username = username?;
    let password =
        password.ok_or_else(|| AppError::Internal("a checked password is not a string".into()))?;
    Ok(Credentials { username, password })
}

/// The text fields of a multipart form, within the body size limit.
async fn multipart_fields(
    req: &HttpRequest,
    payload: &mut Payload,
) -> Result<FormFields, AppError> {
    // The whole body is read under the size cap first, so neither field data
    // nor part headers can grow past it.
    let body = read_body(req, payload).await?;
    let mut multipart = Multipart::new(
        req.headers(),
        futures_util::stream::once(async move { Ok::<_, PayloadError>(body) }),
    );
    let mut fields = FormFields(Vec::new());
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|_| AppError::malformed_body())?;
        let name = field.name().unwrap_or_default().to_owned();
        // Wiped if reading stops half-way.
        let mut value = Zeroizing::new(Vec::new());
        while let Some(chunk) = field.next().await {
            append_wiping(&mut value, &chunk.map_err(|_| AppError::malformed_body())?);
        }
        let text = String::from_utf8(std::mem::take(&mut *value)).map_err(|error| {
            error.into_bytes().zeroize();
            AppError::malformed_body()
        })?;
        fields.0.push((name, text));
    }
    Ok(fields)
}

/// Appends `chunk`, wiping the old buffer when `buffer` has to grow (a plain
/// `extend` would free it with the bytes still in it).
fn append_wiping(buffer: &mut Vec<u8>, chunk: &[u8]) {
    if buffer.capacity() - buffer.len() < chunk.len() {
        let mut grown = Vec::with_capacity((buffer.len() + chunk.len()).max(2 * buffer.capacity()));
        grown.extend_from_slice(buffer);
        buffer.zeroize();
        *buffer = grown;
    }
    buffer.extend_from_slice(chunk);
}

/// Log in: trade an email and password for an access token and a refresh
/// token, in a new session.
#[utoipa::path(
    post,
    path = "/login",
    tag = "authentication",
    request_body(
        description = "The OAuth2 password form (`username` is the email) or JSON",
        content(
            (LoginForm = "application/x-www-form-urlencoded"),
            (LoginForm = "multipart/form-data"),
            (LoginJson = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Successful Response", body = Token),
        (status = 400, response = MalformedBody),
        (status = 403, description = "Unknown email or wrong password", body = ErrorBody),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
pub async fn login(
    req: HttpRequest,
    pool: web::Data<DbPool>,
    hasher: web::Data<PasswordHasher>,
    sessions: web::Data<SessionService>,
    throttle: web::Data<LoginThrottle>,
    credentials: Credentials,
) -> Result<HttpResponse, AppError> {
    let email = credentials.username.trim().to_lowercase();
    // Before the lookup and the hash: a throttled guess costs neither.
    let attempt = throttle.begin(client_address(&req), &email).await?;
    // No stored email holds a NUL, and PostgreSQL refuses one in a query.
    let stored = if email.contains('\0') {
        None
    } else {
        store::run(&pool, move |conn| {
            Ok(db::users::credentials_by_email(conn, &email)?)
        })
        .await?
    };
    let (user_id, stored_hash) = stored.map(|c| (c.user_id, c.password_hash)).unzip();
    let user = || user_id.map_or_else(|| "?".to_owned(), |id| id.to_string());
    let rehashed = match hasher.verify(credentials.password, stored_hash).await? {
        Verdict::Matches { rehashed } => rehashed,
        Verdict::Wrong => return Err(invalid_credentials(attempt).await),
        Verdict::Malformed => {
            log::warn!(
                "user {}'s stored password hash is not one bcrypt can verify: login refused",
                user()
            );
            return Err(invalid_credentials(attempt).await);
        }
        Verdict::TooCostly { cost } => {
            log::warn!(
                "user {}'s stored password hash has cost {cost}, more than \
                 {MAX_COST_ABOVE_CONFIGURED} above BCRYPT_COST {}: login refused unverified",
                user(),
                hasher.cost()
            );
            return Err(invalid_credentials(attempt).await);
        }
    };
    attempt.succeeded().await;
    let user_id =
        user_id.ok_or_else(|| AppError::Internal("verified a password without a user".into()))?;
    if let Some(hash) = rehashed {
        store_rehash(&pool, user_id, hash, hasher.cost()).await;
    }
    let origin = Origin {
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(str::to_owned),
        client_addr: Some(client_address(&req).to_string()),
    };
    let pair = sessions.open(&pool, user_id, origin).await?;
    Ok(HttpResponse::Ok().json(Token::from(pair)))
}

/// The one 403 of a failed login, whatever failed; the attempt counts as a
/// failure for throttling.
async fn invalid_credentials(attempt: LoginAttempt) -> AppError {
    attempt.failed().await;
    AppError::Forbidden("Invalid Credentials".into())
}

/// Stores a login's new hash at the configured cost, before answering. The
/// old hash still verifies, so a failure here is logged and the login stands.
async fn store_rehash(pool: &DbPool, user_id: i32, hash: String, cost: u32) {
    let stored = store::run(pool, move |conn| {
        Ok(db::users::set_password_hash(conn, user_id, &hash)?)
    })
    .await;
    match stored {
        Ok(rows) if rows > 0 => log::info!("rehashed user {user_id}'s password at cost {cost}"),
        Ok(_) => log::info!("user {user_id} went before their password could be rehashed"),
        Err(error) => log::warn!("cannot store user {user_id}'s rehashed password: {error}"),
    }
}

/// `POST /login/refresh`, as JSON or as the OAuth2 refresh form.
#[derive(Debug)]
pub struct RefreshRequest {
    pub refresh_token: SecretString,
}

/// The JSON form of a refresh.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the request body; parsing is by hand below
pub struct RefreshJson {
    #[schema(schema_with = refresh_token_schema)]
    refresh_token: String,
    /// Optional here.
    #[schema(required = false, schema_with = refresh_grant_type)]
    grant_type: String,
}

/// The OAuth2 refresh form (RFC 6749, 6).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the request body; parsing is by hand below
pub struct RefreshForm {
    #[schema(schema_with = refresh_token_schema)]
    refresh_token: String,
    #[schema(schema_with = refresh_grant_type)]
    grant_type: String,
}

fn refresh_token_schema() -> Object {
    string()
        .min_length(Some(1))
        .description(Some("The refresh token of the last login or refresh."))
        .build()
}

fn refresh_grant_type() -> Object {
    string().enum_values(Some([REFRESH_GRANT])).build()
}

/// The OAuth2 grant type of a refresh (RFC 6749, 6).
const REFRESH_GRANT: &str = "refresh_token";

impl FromRequest for RefreshRequest {
    type Error = AppError;
    type Future = BodyFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        read_request(req, payload, |req, mut payload| async move {
            let bytes = read_body(&req, &mut payload).await?;
            let is_form = req
                .mime_type()
                .ok()
                .flatten()
                .is_some_and(|mime| mime.essence_str() == "application/x-www-form-urlencoded");
            if is_form {
                let pairs: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&bytes).map_err(|_| AppError::malformed_body())?;
                // As FastAPI's forms: an empty field is a missing one.
                let field = |name: &str| last_value(&pairs, name).filter(|value| !value.is_empty());
                refresh_request(field("refresh_token"), field("grant_type"), true)
            } else {
                let body = parse_json(&bytes)?;
                let object = json_object(&body)?;
                let mut fields = BodyFields::new(object);
                let token = fields.string("refresh_token");
                let grant = match object.get("grant_type") {
                    None | Some(Value::Null) => None,
                    Some(_) => fields.string("grant_type"),
                };
                let token = fields.finish(token)?;
                refresh_request(Some(token), grant, false)
            }
        })
    }
}

fn refresh_request(
    token: Option<&str>,
    grant: Option<&str>,
    grant_required: bool,
) -> Result<RefreshRequest, AppError> {
    let mut errors = Vec::new();
    match grant {
        Some(REFRESH_GRANT) => {}
        Some(_) => errors.push(FieldError::new(
            &["body", "grant_type"],
            format!("unexpected value; permitted: '{REFRESH_GRANT}'"),
            "value_error.const",
        )),
        None if grant_required => errors.push(FieldError::missing(&["body", "grant_type"])),
        None => {}
    }
    if token.is_none() {
        errors.push(FieldError::missing(&["body", "refresh_token"]));
    }
    match token {
        Some(token) if errors.is_empty() => Ok(RefreshRequest {
            refresh_token: SecretString::from(token),
        }),
        _ => Err(AppError::Validation(errors)),
    }
}

/// Trade a refresh token for a new access token and refresh token. The one
/// presented is spent: presenting it again ends its session.
#[utoipa::path(
    post,
    path = "/login/refresh",
    tag = "authentication",
    request_body(
        description = "The refresh token, as JSON or as the OAuth2 form with \
                       `grant_type=refresh_token`",
        content(
            (RefreshJson = "application/json"),
            (RefreshForm = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 200, description = "Successful Response", body = Token),
        (status = 400, response = MalformedBody),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 422, description = "Validation Error", body = ValidationErrorBody),
        (status = 503, response = Unavailable),
    )
)]
pub async fn refresh(
    pool: web::Data<DbPool>,
    sessions: web::Data<SessionService>,
    request: RefreshRequest,
) -> Result<HttpResponse, AppError> {
    let pair = sessions.refresh(&pool, request.refresh_token).await?;
    Ok(HttpResponse::Ok().json(Token::from(pair)))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;
    use serde_json::json;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormFields {
        FormFields(
            pairs
                .iter()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn credentials_never_show_their_password() {
        let by_form = from_form_fields(form(&[
            ("username", "alice@example.com"),
            ("password", "form secret"),
        ]))
        .unwrap();
        let by_json = from_json(json!({
            "email": "alice@example.com",
            "password": "json secret",
        }))
        .unwrap();

        for (credentials, password) in [(by_form, "form secret"), (by_json, "json secret")] {
            assert_eq!(credentials.password.expose_secret(), password);
            let shown = format!("{credentials:?} {credentials:#?}");
            assert!(!shown.contains(password), "{shown}");
            assert!(shown.contains("alice@example.com"), "{shown}");
        }
    }

    #[test]
    fn of_repeated_form_passwords_the_last_counts_and_an_empty_last_one_is_missing() {
        let last = from_form_fields(form(&[
            ("username", "alice@example.com"),
            ("password", "first"),
            ("password", "second"),
        ]))
        .unwrap();
        let empty_last = from_form_fields(form(&[
            ("username", "alice@example.com"),
            ("password", "first"),
            ("password", ""),
        ]));

        assert_eq!(last.password.expose_secret(), "second");
        assert!(matches!(empty_last, Err(AppError::Validation(errors)) if errors.len() == 1));
    }

    #[test]
    fn a_json_password_that_is_not_a_string_is_a_validation_error() {
        let number = from_json(json!({ "email": "alice@example.com", "password": 12345678 }));
        let missing_email = from_json(json!({ "password": "a secret" }));

        assert!(matches!(number, Err(AppError::Validation(_))));
        assert!(matches!(missing_email, Err(AppError::Validation(_))));
    }

    #[test]
    fn appending_while_wiping_keeps_every_byte_in_order() {
        let mut buffer = Vec::new();
        let mut expected = Vec::new();
        for n in 0..200u8 {
            let chunk = vec![n; usize::from(n % 7)];
            append_wiping(&mut buffer, &chunk);
            expected.extend_from_slice(&chunk);
        }

        assert_eq!(buffer, expected);
    }
}
