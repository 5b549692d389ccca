//! Every supported column type compiles, including sqlx's uuid, time and json types and an enum
//! deriving `sqlx::Type`.

use sqlx::types::time::OffsetDateTime;
use sqlx::types::{JsonValue, Uuid};
use tenancy::TenantModel;

#[derive(Debug, Clone, Copy, PartialEq, sqlx::Type)]
#[sqlx(type_name = "mood", rename_all = "lowercase")]
pub enum Mood {
    Calm,
    Alert,
}

#[derive(Debug, TenantModel)]
#[tenancy(table = "everything")]
pub struct Everything {
    #[tenancy(id)]
    pub id: Uuid,
    pub tiny: i8,
    pub small: i16,
    pub int: i32,
    pub big: i64,
    pub real: f32,
    pub double: f64,
    pub flag: bool,
    pub text: String,
    pub maybe_text: Option<String>,
    pub maybe_int: core::option::Option<i64>,
    pub full_path: std::string::String,
    pub bytes: Vec<u8>,
    pub maybe_bytes: Option<Vec<u8>>,
    pub tags: Vec<String>,
    pub numbers: Vec<i64>,
    pub at: OffsetDateTime,
    pub maybe_at: Option<OffsetDateTime>,
    pub document: JsonValue,
    pub mood: Mood,
    pub maybe_mood: Option<Mood>,
    pub r#type: String,
}

const _: () = assert!(Everything::TABLE.columns.len() == 22);
const _: () = assert!(Everything::MOOD.index() == 19);
const _: () = assert!(Everything::TYPE.index() == 21);

fn main() {
    let last = Everything::TABLE.columns.last().unwrap();
    assert_eq!(last.name, "type");
    assert_eq!(Everything::TYPE.name(), "type");
    let _: tenancy::Column<Everything, Option<Mood>> = Everything::MAYBE_MOOD;
    let _: tenancy::Column<Everything, Uuid> = Everything::ID;
    let _ = Everything::MOOD.eq(Mood::Alert);
    let _ = Everything::MAYBE_AT.is_null();
}
