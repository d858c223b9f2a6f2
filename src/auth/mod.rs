//! Who the caller is: password hashing, JWT access tokens, sessions and
//! their refresh tokens, login throttling, and the middleware that guards
//! the protected scopes.

pub mod middleware;
pub mod password;
pub mod sessions;
pub mod throttle;
pub mod token;

pub use middleware::{CurrentUser, require_bearer_token};
pub use password::PasswordHasher;
pub use sessions::SessionService;
pub use throttle::LoginThrottle;
pub use token::TokenService;
