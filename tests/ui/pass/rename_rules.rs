//! Each `rename_all` rule, the default table name, and `rename` winning over `rename_all`.

use tenancy::TenantModel;

macro_rules! model {
    ($name:ident, $rule:literal) => {
        #[derive(TenantModel)]
        #[tenancy(rename_all = $rule)]
        struct $name {
            #[tenancy(id)]
            user_id: i64,
            #[tenancy(rename = "as_is")]
            kept_name: String,
        }
    };
}

model!(Lower, "lowercase");
model!(Upper, "UPPERCASE");
model!(Pascal, "PascalCase");
model!(Camel, "camelCase");
model!(Snake, "snake_case");
model!(ScreamingSnake, "SCREAMING_SNAKE_CASE");
model!(Kebab, "kebab-case");
model!(ScreamingKebab, "SCREAMING-KEBAB-CASE");

fn main() {
    let columns = [
        Lower::USER_ID.name(),
        Upper::USER_ID.name(),
        Pascal::USER_ID.name(),
        Camel::USER_ID.name(),
        Snake::USER_ID.name(),
        ScreamingSnake::USER_ID.name(),
        Kebab::USER_ID.name(),
        ScreamingKebab::USER_ID.name(),
    ];
    assert_eq!(
        columns,
        ["user_id", "USER_ID", "UserId", "userId", "user_id", "USER_ID", "user-id", "USER-ID"]
    );
    assert_eq!(Pascal::KEPT_NAME.name(), "as_is");
    assert_eq!(ScreamingSnake::TABLE.name, "screaming_snakes");
    assert_eq!(Kebab::TABLE.name, "kebabs");
}
