//! Validation: every rule is checked and every error returned at once, per field, like the
//! errors of an Ecto changeset.

use std::fmt;

/// A type that can check itself before it is written.
///
/// `#[derive(TenantModel)]` implements it from the fields' `#[tenancy(...)]` rules (`required`,
/// `length`, `range`, `custom`). Insert and update call it first and return
/// [`Error::Validation`](crate::Error::Validation) without touching the database.
pub trait Validate {
    /// Checks every rule and returns all broken ones.
    fn validate(&self) -> Result<(), ValidationErrors>;
}

/// One broken rule of one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The Rust field name.
    pub field: &'static str,
    /// The rule: `"required"`, `"length"`, `"range"` or `"custom"`.
    pub rule: &'static str,
    /// A human-readable message, e.g. `"must be at most 20 characters"`.
    pub message: String,
}

/// All broken rules of one value, in field order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a broken rule.
    pub fn add(&mut self, field: &'static str, rule: &'static str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field,
            rule,
            message: message.into(),
        });
    }

    /// Whether no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every broken rule, in the order found.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The broken rules of one field.
    pub fn field<'a>(&'a self, field: &'a str) -> impl Iterator<Item = &'a FieldError> + 'a {
        self.errors.iter().filter(move |e| e.field == field)
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("validation failed: ")?;
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} {}", e.field, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

/// The checks the derive calls. Public for generated code; not a stable API.
#[doc(hidden)]
pub mod rules {
    use super::ValidationErrors;

    /// A value that can be absent or empty: `String`, `Vec<T>`, `Option<T>`.
    #[diagnostic::on_unimplemented(
        message = "`required` does not apply to `{Self}`",
        label = "`required` checks String, Vec<T> and Option<T> fields",
        note = "for numbers use `range`"
    )]
    pub trait Present {
        /// Whether the value is present and non-empty.
        fn is_present(&self) -> bool;
    }
    impl Present for String {
        fn is_present(&self) -> bool {
            !self.is_empty()
        }
    }
    impl<T> Present for Vec<T> {
        fn is_present(&self) -> bool {
            !self.is_empty()
        }
    }
    impl<T> Present for Option<T> {
        fn is_present(&self) -> bool {
            self.is_some()
        }
    }

    /// A value with a length: strings count characters, vectors count elements. `None` has no
    /// length and passes length checks (use `required` to demand a value).
    #[diagnostic::on_unimplemented(
        message = "`length` does not apply to `{Self}`",
        label = "`length` checks String and Vec<T> fields (or Options of them)",
        note = "for numbers use `range`"
    )]
    pub trait HasLength {
        /// The length, or `None` when absent.
        fn length(&self) -> Option<usize>;
    }
    impl HasLength for String {
        fn length(&self) -> Option<usize> {
            Some(self.chars().count())
        }
    }
    impl<T> HasLength for Vec<T> {
        fn length(&self) -> Option<usize> {
            Some(self.len())
        }
    }
    impl<T: HasLength> HasLength for Option<T> {
        fn length(&self) -> Option<usize> {
            self.as_ref().and_then(HasLength::length)
        }
    }

    /// `required`: the value is present and non-empty.
    pub fn required<T: Present>(errors: &mut ValidationErrors, field: &'static str, value: &T) {
        if !value.is_present() {
            errors.add(field, "required", "is required");
        }
    }

    /// `length(min = .., max = ..)`.
    pub fn length<T: HasLength>(
        errors: &mut ValidationErrors,
        field: &'static str,
        value: &T,
        min: Option<usize>,
        max: Option<usize>,
    ) {
        let Some(len) = value.length() else { return };
        if let Some(min) = min.filter(|&min| len < min) {
            errors.add(
                field,
                "length",
                format!("must be at least {min} long (is {len})"),
            );
        }
        if let Some(max) = max.filter(|&max| len > max) {
            errors.add(
                field,
                "length",
                format!("must be at most {max} long (is {len})"),
            );
        }
    }

    /// `range(min = .., max = ..)`; `value` is `None` for an absent optional field, which passes.
    pub fn range<T: PartialOrd + std::fmt::Display>(
        errors: &mut ValidationErrors,
        field: &'static str,
        value: Option<&T>,
        min: Option<T>,
        max: Option<T>,
    ) {
        let Some(value) = value else { return };
        if let Some(min) = min.filter(|min| value < min) {
            errors.add(
                field,
                "range",
                format!("must be at least {min} (is {value})"),
            );
        }
        if let Some(max) = max.filter(|max| value > max) {
            errors.add(
                field,
                "range",
                format!("must be at most {max} (is {value})"),
            );
        }
    }

    /// `custom = "path"`: the generated code calls `path(&self.field)` and hands the result
    /// here; an `Err` becomes the field's error, its `Display` the message.
    pub fn custom<E: std::fmt::Display>(
        errors: &mut ValidationErrors,
        field: &'static str,
        result: Result<(), E>,
    ) {
        if let Err(message) = result {
            errors.add(field, "custom", message.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rules::*;
    use super::*;

    #[test]
    fn collects_every_error() {
        let mut e = ValidationErrors::new();
        required(&mut e, "name", &String::new());
        required(&mut e, "nick", &None::<String>);
        required(&mut e, "tags", &vec![1]);
        length(&mut e, "position", &"abcdef".to_string(), Some(1), Some(3));
        length(&mut e, "bio", &Some("é".to_string()), Some(2), None);
        length(&mut e, "maybe", &None::<String>, Some(2), None);
        range(&mut e, "age", Some(&200), Some(0), Some(150));
        range(&mut e, "opt", None::<&i32>, Some(0), Some(1));
        custom(&mut e, "code", Err(format!("{:?} is too short", "x")));
        custom(&mut e, "fine", Ok::<(), &str>(()));
        let fields: Vec<_> = e.errors().iter().map(|e| (e.field, e.rule)).collect();
        assert_eq!(
            fields,
            [
                ("name", "required"),
                ("nick", "required"),
                ("position", "length"),
                ("bio", "length"),
                ("age", "range"),
                ("code", "custom"),
            ]
        );
        assert_eq!(
            e.to_string(),
            "validation failed: name is required; nick is required; position must be at most 3 long (is 6); bio must be at least 2 long (is 1); age must be at most 150 (is 200); code \"x\" is too short"
        );
        assert!(e.into_result().is_err());
        assert!(ValidationErrors::new().into_result().is_ok());
    }
}
