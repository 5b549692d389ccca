//! Which database a URL names, from its scheme.

use std::borrow::Cow;

use crate::error::CliError;

/// The databases the command manages tenants in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// PostgreSQL: a schema per tenant.
    Postgres,
    /// MySQL or MariaDB: a database per tenant.
    MySql,
    /// SQLite: a database file per tenant, in the folder the URL names.
    Sqlite,
}

/// The URL schemes accepted, in the order messages list them.
pub const SCHEMES: [&str; 5] = [
    "postgres://",
    "postgresql://",
    "mysql://",
    "mariadb://",
    "sqlite://",
];

/// The database `url` names, and the URL to connect with: sqlx's MySQL driver takes only
/// `mysql://`, so `mariadb://` is rewritten to it. Schemes are case-insensitive.
pub fn database(url: &str) -> Result<(Database, Cow<'_, str>), CliError> {
    let scheme = scheme(url).ok_or(CliError::Scheme(None))?;
    let database = match scheme.to_ascii_lowercase().as_str() {
        "postgres" | "postgresql" => Database::Postgres,
        "mysql" => Database::MySql,
        "sqlite" => Database::Sqlite,
        "mariadb" => {
            let rest = &url[scheme.len()..];
            return Ok((Database::MySql, Cow::Owned(format!("mysql{rest}"))));
        }
        _ => return Err(CliError::Scheme(Some(scheme.to_owned()))),
    };
    Ok((database, Cow::Borrowed(url)))
}

/// The scheme of `url` (before `://`), if it has one. Only a well-formed scheme is returned, so
/// an error message showing it cannot show a password.
fn scheme(url: &str) -> Option<&str> {
    let (scheme, _) = url.trim_start().split_once("://")?;
    let mut chars = scheme.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    well_formed.then_some(scheme)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(url: &str) -> Result<(Database, String), String> {
        database(url)
            .map(|(db, url)| (db, url.into_owned()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn postgres_schemes_pass_unchanged() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h/db",
            "POSTGRES://u@h/db",
        ] {
            assert_eq!(of(url), Ok((Database::Postgres, url.to_owned())));
        }
    }

    #[test]
    fn mysql_schemes_and_mariadb_becomes_mysql() {
        let url = "mysql://root@127.0.0.1:3306/test";
        assert_eq!(of(url), Ok((Database::MySql, url.to_owned())));
        assert_eq!(
            of("mariadb://root:pw@h:3306/test?ssl-mode=required"),
            Ok((
                Database::MySql,
                "mysql://root:pw@h:3306/test?ssl-mode=required".to_owned()
            ))
        );
        assert_eq!(
            of("MariaDB://h/db"),
            Ok((Database::MySql, "mysql://h/db".to_owned()))
        );
    }

    #[test]
    fn sqlite_names_a_folder() {
        let url = "sqlite:///var/lib/app/tenants";
        assert_eq!(of(url), Ok((Database::Sqlite, url.to_owned())));
    }

    #[test]
    fn other_schemes_are_refused_with_the_accepted_ones_and_no_secret() {
        let oracle = of("oracle://scott:tiger@h/db").unwrap_err();
        assert_eq!(
            oracle,
            "unsupported database URL scheme \"oracle\": use postgres://, postgresql://, \
             mysql://, mariadb:// or sqlite://"
        );
        let none = of("user:secret@host/db").unwrap_err();
        assert!(
            none.starts_with("the database URL has no scheme: use postgres://"),
            "{none}"
        );
        let odd = of("us er:secret@host://x").unwrap_err();
        assert!(!odd.contains("secret"), "{odd}");
    }
}
