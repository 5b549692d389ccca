//! The behaviours every backend shares, written once. Each file here defines a macro
//! `behaviours!` holding its concern's tests; [`mount!`] expands them in a module of the backend
//! module it is invoked in, where `super::` is that backend (its `Db`, `Pool`, `Fresh`,
//! `Lifecycle`, …: see [`backends`](super)). The tests are named after where they expand:
//! `backends::pg::crud::…`, `backends::mysql::crud::…`.
//!
//! A failing assertion reports the `mount!` line as its place (a panic inside a macro expansion
//! is placed at the outermost call); its message and the test's name say which it was, and
//! `RUST_BACKTRACE=1` shows the line in the file here.

pub mod cleanup;
pub mod clone;
pub mod crud;
pub mod insert_many;
pub mod isolation;
pub mod lifecycle;
pub mod migrations;
pub mod models;
pub mod port;
pub mod query;
pub mod row_drop;
pub mod row_level;
pub mod shared_models;
pub mod tier;
pub mod validation;

/// Mounts the shared behaviours named (`crud`, `lifecycle`, …), one module each, in the backend
/// module it is invoked in; `mount!(all)`: every one of them (a server backend's set).
macro_rules! mount {
    (all) => {
        $crate::backends::shared::mount!(
            cleanup,
            clone,
            crud,
            insert_many,
            isolation,
            lifecycle,
            migrations,
            models,
            port,
            query,
            row_drop,
            row_level,
            shared_models,
            tier,
            validation,
        );
    };
    ($($concern:ident),+ $(,)?) => {
        $(
            mod $concern {
                $crate::backends::shared::$concern::behaviours!();
            }
        )+
    };
}
pub(crate) use mount;
