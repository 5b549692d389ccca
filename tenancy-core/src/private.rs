//! What generated code needs; not a stable API (re-exported as `__private`).

pub use crate::validate::rules;
pub use sqlx;

use sqlx::error::BoxDynError;

use crate::backend::Backend;

/// A type a model's column can have on backend `B`. The one bound the derive checks per
/// field, so a wrong type gives one clear error at the field's type.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the type of a column",
    label = "not a column type of the model's database",
    note = "a column's type implements sqlx's `Type`, `Encode` and `Decode` for the model's database: derive `sqlx::Type` for your own types, enable the `tenancy` feature for uuid, time, chrono or json types, or mark the field #[tenancy(skip)]"
)]
pub trait ColumnType<B: Backend>: Sized {
    /// Reads the column named `column` from `row`.
    fn decode(row: &B::Row, column: &str) -> Result<Self, sqlx::Error>;
    /// Binds the value as the next argument.
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError>;
}

/// The blanket impl of [`ColumnType`] for one backend: sqlx's traits for that database
/// (invoked once per backend by the registration in lib.rs).
macro_rules! column_type {
    ($backend:ty) => {
        impl<T> $crate::private::ColumnType<$backend> for T
        where
            T: $crate::value::SqlValue<$backend> + for<'r> sqlx::Decode<'r, $backend>,
        {
            fn decode(
                row: &<$backend as sqlx::Database>::Row,
                column: &str,
            ) -> Result<Self, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
            fn bind(
                &self,
                args: &mut <$backend as sqlx::Database>::Arguments,
            ) -> Result<(), sqlx::error::BoxDynError> {
                sqlx::Arguments::add(args, self)
            }
        }
    };
}

pub(crate) use column_type;

/// How to read and bind one column on backend `B`, as function pointers.
pub struct Codec<B: Backend, T> {
    /// Reads the column.
    pub decode: fn(&B::Row, &str) -> Result<T, sqlx::Error>,
    /// Binds the value.
    pub bind: fn(&T, &mut B::Arguments) -> Result<(), BoxDynError>,
}

/// The codec of a column type on backend `B`.
pub const fn codec<B: Backend, T: ColumnType<B>>() -> Codec<B, T> {
    Codec {
        decode: <T as ColumnType<B>>::decode,
        bind: <T as ColumnType<B>>::bind,
    }
}
