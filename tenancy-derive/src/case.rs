//! Name conversions: `rename_all` rules for column names and the default table name.

/// A `rename_all` rule: how a field name (snake_case, as Rust writes it) becomes a column name.
/// The same set as serde's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

/// Every rule, by the name written in `rename_all = "..."`.
pub const RENAME_RULES: &[(&str, RenameRule)] = &[
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    pub fn from_name(name: &str) -> Option<Self> {
        RENAME_RULES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, rule)| rule)
    }

    /// The column name of a field named `field`.
    pub fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::Lower => field.to_lowercase(),
            RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_uppercase(),
            RenameRule::Pascal => {
                let mut pascal = String::with_capacity(field.len());
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        pascal.extend(ch.to_uppercase());
                        capitalize = false;
                    } else {
                        pascal.push(ch);
                    }
                }
                pascal
            }
            RenameRule::Camel => {
                let pascal = RenameRule::Pascal.apply_to_field(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_lowercase().chain(chars).collect(),
                    None => pascal,
                }
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_uppercase().replace('_', "-"),
        }
    }
}

/// `UserProfile` -> `user_profile`. A run of capitals is one word (`HTTPRequest` ->
/// `http_request`, `UserID` -> `user_id`).
pub fn snake_case(type_name: &str) -> String {
    let chars: Vec<char> = type_name.chars().collect();
    let mut snake = String::with_capacity(type_name.len() + 4);
    for (i, &ch) in chars.iter().enumerate() {
        if ch.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let starts_word = match prev {
                None => false,
                Some(prev) => {
                    prev.is_lowercase()
                        || prev.is_ascii_digit()
                        || (prev.is_uppercase() && next.is_some_and(|n| n.is_lowercase()))
                }
            };
            if starts_word {
                snake.push('_');
            }
            snake.extend(ch.to_lowercase());
        } else {
            snake.push(ch);
        }
    }
    snake
}

/// The table of a struct without `#[tenancy(table = "...")]`: its name in snake_case plus `s`,
/// with no other English pluralisation (`Category` -> `categorys`).
pub fn default_table_name(struct_name: &str) -> String {
    snake_case(struct_name) + "s"
}

/// The column constant of a field: its name upper-cased (`first_name` -> `FIRST_NAME`).
pub fn const_name(field: &str) -> String {
    field.to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_names() {
        for (name, table) in [
            ("Guard", "guards"),
            ("UserProfile", "user_profiles"),
            ("HTTPRequest", "http_requests"),
            ("UserID", "user_ids"),
            ("Item2Go", "item2_gos"),
            ("A", "as"),
            ("already_snake", "already_snakes"),
            ("Category", "categorys"),
        ] {
            assert_eq!(default_table_name(name), table, "{name}");
        }
    }

    #[test]
    fn rename_rules() {
        use RenameRule::*;
        for (rule, field, column) in [
            (Lower, "first_name", "first_name"),
            (Lower, "aB", "ab"),
            (Upper, "first_name", "FIRST_NAME"),
            (Pascal, "first_name", "FirstName"),
            (Pascal, "id", "Id"),
            (Camel, "first_name", "firstName"),
            (Camel, "id", "id"),
            (Snake, "first_name", "first_name"),
            (ScreamingSnake, "first_name", "FIRST_NAME"),
            (Kebab, "first_name", "first-name"),
            (ScreamingKebab, "first_name", "FIRST-NAME"),
        ] {
            assert_eq!(rule.apply_to_field(field), column, "{rule:?} {field}");
        }
    }

    #[test]
    fn every_rule_has_a_name() {
        let names: Vec<&str> = RENAME_RULES.iter().map(|&(name, _)| name).collect();
        assert_eq!(
            names,
            [
                "lowercase",
                "UPPERCASE",
                "PascalCase",
                "camelCase",
                "snake_case",
                "SCREAMING_SNAKE_CASE",
                "kebab-case",
                "SCREAMING-KEBAB-CASE",
            ]
        );
        for &(name, rule) in RENAME_RULES {
            assert_eq!(RenameRule::from_name(name), Some(rule));
        }
        assert_eq!(RenameRule::from_name("camelcase"), None);
    }

    #[test]
    fn const_names() {
        assert_eq!(const_name("first_name"), "FIRST_NAME");
        assert_eq!(const_name("aB"), const_name("ab"));
    }
}
