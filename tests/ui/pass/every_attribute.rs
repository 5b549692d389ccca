//! Every attribute at once, and what each one does to the table, the columns and validation.

// `Model` describes the model (its table, key and columns), `TenantModel` operates on it.
use tenancy::{Model, TenantModel, Validate};

fn valid_code(code: &String) -> Result<(), String> {
    if code.starts_with('G') {
        Ok(())
    } else {
        Err(format!("{code:?} must start with G"))
    }
}

mod rules {
    pub fn not_blank(value: &Option<String>) -> Result<(), &'static str> {
        match value {
            Some(v) if v.trim().is_empty() => Err("must not be blank"),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, TenantModel, sqlx::FromRow)]
#[tenancy(table = "palace_guards", rename_all = "camelCase")]
struct Guard {
    #[tenancy(id, generated)]
    id: i64,
    /// The guard's name.
    #[tenancy(required, length(min = 1, max = 50))]
    name: String,
    #[tenancy(rename = "rank")]
    #[tenancy(length(max = 20))]
    position: String,
    #[tenancy(range(min = 18, max = 150))]
    age: i32,
    #[tenancy(range(min = -10.5))]
    balance: Option<f64>,
    #[tenancy(custom = "valid_code")]
    badge_code: String,
    #[tenancy(custom = "rules::not_blank", required)]
    nick_name: Option<String>,
    #[tenancy(generated)]
    created_at: i64,
    #[sqlx(skip)]
    #[tenancy(skip)]
    cache: Vec<String>,
}

// Column indexes follow field order; the skipped field has none.
const _: () = assert!(Guard::ID.index() == 0);
const _: () = assert!(Guard::NAME.index() == 1);
const _: () = assert!(Guard::POSITION.index() == 2);
const _: () = assert!(Guard::NICK_NAME.index() == 6);
const _: () = assert!(Guard::CREATED_AT.index() == 7);
const _: () = assert!(Guard::TABLE.columns.len() == 8);
const _: () = assert!(Guard::TABLE.columns[0].primary_key && Guard::TABLE.columns[0].generated);
const _: () = assert!(Guard::TABLE.columns[7].generated && !Guard::TABLE.columns[7].primary_key);

fn main() {
    assert_eq!(Guard::TABLE.name, "palace_guards");
    let columns: Vec<&str> = Guard::TABLE.columns.iter().map(|c| c.name).collect();
    assert_eq!(
        columns,
        [
            "id",
            "name",
            "rank",
            "age",
            "balance",
            "badgeCode",
            "nickName",
            "createdAt"
        ]
    );
    assert_eq!(Guard::POSITION.name(), "rank");
    assert_eq!(Guard::BADGE_CODE.name(), "badgeCode");

    let good = Guard {
        id: 0,
        name: "Abu".into(),
        position: "Captain".into(),
        age: 30,
        balance: None,
        badge_code: "G-7".into(),
        nick_name: Some("Ab".into()),
        created_at: 0,
        cache: vec!["x".into()],
    };
    assert_eq!(good.validate(), Ok(()));
    assert_eq!(good.id(), 0);

    let bad = Guard {
        name: String::new(),
        position: "x".repeat(21),
        age: 151,
        balance: Some(-11.0),
        badge_code: "X".into(),
        nick_name: None,
        ..good.clone()
    };
    let errors = bad.validate().unwrap_err();
    let broken: Vec<(&str, &str)> = errors.errors().iter().map(|e| (e.field, e.rule)).collect();
    assert_eq!(
        broken,
        [
            ("name", "required"),
            ("name", "length"),
            ("position", "length"),
            ("age", "range"),
            ("balance", "range"),
            ("badge_code", "custom"),
            ("nick_name", "required"),
        ]
    );
    let blank = Guard {
        nick_name: Some("  ".into()),
        ..good
    };
    let errors = blank.validate().unwrap_err();
    assert_eq!(errors.errors()[0].message, "must not be blank");
}
