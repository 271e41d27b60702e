//! Identifier types. Each id is its own type so that a `UserId` cannot be passed where an
//! `OrgId` is meant; all are cheap to clone (`Arc<str>` inside).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps an id.
            pub fn new(id: impl Into<Arc<str>>) -> Self {
                Self(id.into())
            }

            /// A fresh random id (UUID v4).
            pub fn random() -> Self {
                Self(crate::random::uuid().into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.into())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s.into())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// An agent's id (the `sub` of its run tokens).
    AgentId
);
id_type!(
    /// An organisation (tenant) id; an agent's `company_id`.
    OrgId
);
id_type!(
    /// An API key's id (public; not the key).
    ApiKeyId
);
id_type!(
    /// A login session's id (the `sid` claim).
    SessionId
);
id_type!(
    /// An agent run's id (the `run_id` claim).
    RunId
);
id_type!(
    /// A token's unique id (the `jti` claim).
    TokenId
);
