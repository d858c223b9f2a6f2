//! The OpenAPI document, generated from the handlers, and Swagger UI served
//! from the files compiled into the binary (no network needed).

use std::sync::Arc;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::Config;

use crate::config::PostShape;
use crate::error::AppError;
use crate::routes::{account, login, post_shape, posts, root, schemas, sessions, users, votes};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "postapi",
        description = "The posts/users/votes API of the FastAPI course, in Rust.",
    ),
    paths(
        root::root,
        root::health,
        root::live,
        users::create_user,
        account::get_me,
        account::change_password,
        account::delete_me,
        users::get_user,
        login::login,
        login::refresh,
        sessions::list_sessions,
        sessions::revoke_session,
        sessions::log_out,
        sessions::log_out_everywhere,
        posts::list_posts,
        posts::get_post,
        posts::create_post,
        posts::update_post,
        posts::delete_post,
        votes::vote,
    ),
    components(responses(
        schemas::Unauthorized,
        schemas::PayloadTooLarge,
        schemas::MalformedBody,
        schemas::Unavailable,
        schemas::TooManyRequests,
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "root", description = "Liveness"),
        (name = "users", description = "Sign up, look up users, and manage your own account"),
        (name = "authentication", description = "Trade credentials, or a refresh token, for a bearer token"),
        (name = "sessions", description = "Where you are logged in; log out"),
        (name = "posts", description = "Posts, with their owner and vote count"),
        (name = "votes", description = "Vote on posts"),
    )
)]
pub struct ApiDoc;

/// The schemes the protected operations accept: the OAuth2 password flow (so
/// Swagger's Authorize button logs in through `/login`) or a pasted JWT.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "OAuth2PasswordBearer",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::with_refresh_url(
                "/login",
                Scopes::new(),
                "/login/refresh",
            ))])),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as served at `/openapi.json`, rendered once at start-up for
/// the post shape the server answers. Shared bytes, so serving it copies nothing.
pub struct OpenApiJson(pub web::Bytes);

impl OpenApiJson {
    pub fn render(shape: &PostShape) -> Result<Self, String> {
        let mut document = ApiDoc::openapi();
        post_shape::describe(shape, &mut document)?;
        document
            .to_pretty_json()
            .map(|json| Self(json.into()))
            .map_err(|e| e.to_string())
    }
}

pub async fn openapi_json(document: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(document.0.clone())
}

pub fn swagger_config() -> Arc<Config<'static>> {
    Arc::new(Config::new(["/openapi.json"]).persist_authorization(true))
}

/// `GET /docs`: Swagger UI's page. Its assets are linked relatively, so the
/// page names `/docs/` as its base whether or not the URL had the slash.
pub async fn swagger_index(
    config: web::Data<Arc<Config<'static>>>,
) -> Result<HttpResponse, AppError> {
    let page = swagger_file("index.html", &config)?;
    let html = String::from_utf8_lossy(&page.bytes).replacen(
        "<head>",
        "<head>\n    <base href=\"/docs/\">",
        1,
    );
    Ok(HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(html))
}

/// `GET /docs/{file}`: Swagger UI's scripts, styles and initialiser.
pub async fn swagger_asset(
    file: web::Path<String>,
    config: web::Data<Arc<Config<'static>>>,
) -> Result<HttpResponse, AppError> {
    let file = swagger_file(&file, &config)?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .body(file.bytes.into_owned()))
}

fn swagger_file<'a>(
    path: &str,
    config: &Arc<Config<'a>>,
) -> Result<utoipa_swagger_ui::SwaggerFile<'a>, AppError> {
    let path = if path.is_empty() { "index.html" } else { path };
    match utoipa_swagger_ui::serve(path, config.clone()) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(AppError::NotFound("Not Found".into())),
        Err(e) => Err(AppError::Internal(format!("swagger ui: {e}"))),
    }
}
