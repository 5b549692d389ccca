//! Values: what a statement binds and what generic code reads back from a row, on any backend.

use sqlx::error::BoxDynError;
use sqlx::{Arguments, Database, Decode, Encode, Type};

/// A value that can be bound as a parameter of backend `B` and kept until the statement runs.
pub trait SqlValue<B: Database = sqlx::Postgres>:
    for<'q> Encode<'q, B> + Type<B> + Send + Sync + 'static
{
}
impl<B: Database, T> SqlValue<B> for T where
    T: for<'q> Encode<'q, B> + Type<B> + Send + Sync + 'static
{
}

/// A value that can be read from a row of backend `B` (an aggregate, a group's key).
pub trait SqlDecode<B: Database = sqlx::Postgres>:
    for<'r> Decode<'r, B> + Type<B> + Send + 'static
{
}
impl<B: Database, T> SqlDecode<B> for T where T: for<'r> Decode<'r, B> + Type<B> + Send + 'static {}

/// A bound value waiting for its statement on backend `B`, behind a pointer.
pub(crate) trait Bind<B: Database>: Send + Sync {
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError>;
}

impl<B: Database, T: SqlValue<B>> Bind<B> for T {
    fn bind(&self, args: &mut B::Arguments) -> Result<(), BoxDynError> {
        args.add(self)
    }
}

/// A row of a model as a statement binds it: the value of each column by index (the derive's
/// `bind_column`).
pub trait BindColumn<B: Database>: Sync {
    /// Binds the value of column `index` as the next argument.
    fn bind_column(&self, index: usize, args: &mut B::Arguments) -> Result<(), BoxDynError>;
}

/// The scalars generic code binds and reads on every backend: a limit or offset, a count, an
/// aggregate, the branch index of a statement across tenants. Implemented by each backend with
/// [`scalars!`], since sqlx's row access needs the concrete row type.
pub trait Scalars: Database {
    /// Binds an `i64` (a limit or offset).
    #[doc(hidden)]
    fn bind_i64(args: &mut Self::Arguments, value: i64) -> Result<(), BoxDynError>;

    /// Binds a string (a tenant's name in a tenant column).
    #[doc(hidden)]
    fn bind_str(args: &mut Self::Arguments, value: &str) -> Result<(), BoxDynError>;

    /// Reads column `index` of `row` as an `i64` (a count).
    #[doc(hidden)]
    fn get_i64(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;

    /// Reads the first column of `row` as a string (a container's name).
    #[doc(hidden)]
    fn first_str(row: &Self::Row) -> Result<String, sqlx::Error>;

    /// Reads column `index` of `row` as a `T` (an aggregate, a group's key).
    #[doc(hidden)]
    fn get<T: SqlDecode<Self>>(row: &Self::Row, index: usize) -> Result<T, sqlx::Error>;

    /// Reads the branch index a statement across tenants adds to each row (column `index`).
    #[doc(hidden)]
    fn get_branch(row: &Self::Row, index: usize) -> Result<i64, sqlx::Error>;
}

/// Implements [`Scalars`] for a backend whose literal integers read back as `$branch`.
macro_rules! scalars {
    ($backend:ty, branch = $branch:ty) => {
        impl $crate::value::Scalars for $backend {
            fn bind_i64(
                args: &mut <Self as sqlx::Database>::Arguments,
                value: i64,
            ) -> Result<(), sqlx::error::BoxDynError> {
                sqlx::Arguments::add(args, value)
            }

            fn bind_str(
                args: &mut <Self as sqlx::Database>::Arguments,
                value: &str,
            ) -> Result<(), sqlx::error::BoxDynError> {
                sqlx::Arguments::add(args, value)
            }

            fn get_i64(
                row: &<Self as sqlx::Database>::Row,
                index: usize,
            ) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(row, index)
            }

            fn first_str(row: &<Self as sqlx::Database>::Row) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(row, 0)
            }

            fn get<T: $crate::value::SqlDecode<Self>>(
                row: &<Self as sqlx::Database>::Row,
                index: usize,
            ) -> Result<T, sqlx::Error> {
                sqlx::Row::try_get(row, index)
            }

            fn get_branch(
                row: &<Self as sqlx::Database>::Row,
                index: usize,
            ) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get::<$branch, _>(row, index).map(i64::from)
            }
        }
    };
}
pub(crate) use scalars;
