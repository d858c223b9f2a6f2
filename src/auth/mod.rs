//! Who the caller is: password hashing, JWT access tokens, and the middleware
//! that guards the protected scopes.

pub mod middleware;
pub mod password;
pub mod throttle;
pub mod token;

pub use middleware::{CurrentUser, require_bearer_token};
pub use password::PasswordHasher;
pub use throttle::LoginThrottle;
pub use token::TokenService;
