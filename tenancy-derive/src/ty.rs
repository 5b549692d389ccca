//! What can be told about a field's type from its syntax alone. A type alias hides all of it;
//! the trait assertions in the generated code catch what these miss.

use syn::{GenericArgument, PathArguments, Type};

/// `T` of `Option<T>` (also `std::option::Option<T>`, `core::option::Option<T>`).
pub fn option_inner(ty: &Type) -> Option<&Type> {
    generic_argument(ty, "Option", &["std", "core"], "option")
}

/// `T` of `Vec<T>` (also `std::vec::Vec<T>`, `alloc::vec::Vec<T>`).
fn vec_inner(ty: &Type) -> Option<&Type> {
    generic_argument(ty, "Vec", &["std", "alloc"], "vec")
}

fn generic_argument<'a>(
    ty: &'a Type,
    name: &str,
    crates: &[&str],
    module: &str,
) -> Option<&'a Type> {
    let path = type_path(ty)?;
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let known = match segments.as_slice() {
        [last] => last == name,
        [krate, m, last] => crates.contains(&krate.as_str()) && m == module && last == name,
        _ => false,
    };
    if !known {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &path.segments.last()?.arguments else {
        return None;
    };
    match args.args.iter().collect::<Vec<_>>().as_slice() {
        [GenericArgument::Type(inner)] => Some(inner),
        _ => None,
    }
}

fn type_path(ty: &Type) -> Option<&syn::Path> {
    match ty {
        Type::Path(path) if path.qself.is_none() => Some(&path.path),
        Type::Paren(paren) => type_path(&paren.elem),
        Type::Group(group) => type_path(&group.elem),
        _ => None,
    }
}

/// The name of a primitive type written as `i32`, `std::primitive::i32` or
/// `core::primitive::i32`.
fn primitive(ty: &Type) -> Option<String> {
    let path = type_path(ty)?;
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let name = match segments.as_slice() {
        [name] => name,
        [krate, m, name] if (krate == "std" || krate == "core") && m == "primitive" => name,
        _ => return None,
    };
    let no_arguments = path.segments.iter().all(|s| s.arguments.is_none());
    no_arguments.then(|| name.clone())
}

/// The name of the type if it is a number or `bool`: a value that is never empty and has no
/// length.
pub fn number_or_bool(ty: &Type) -> Option<String> {
    const NAMES: &[&str] = &[
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
        "f32", "f64", "bool",
    ];
    primitive(ty).filter(|name| NAMES.contains(&name.as_str()))
}

/// Whether the type is `String` (or `std::string::String`, `alloc::string::String`).
pub fn is_string(ty: &Type) -> bool {
    let Some(path) = type_path(ty) else {
        return false;
    };
    let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    let known = match segments.as_slice() {
        [name] => name == "String",
        [krate, m, name] => {
            (krate == "std" || krate == "alloc") && m == "string" && name == "String"
        }
        _ => false,
    };
    known && path.segments.iter().all(|s| s.arguments.is_none())
}

/// A type no column can have, found in the syntax: the part of `ty` to point at and why.
/// Looks inside `Option<_>` and `Vec<_>`, where `Vec<u8>` (bytea) is fine. Unsigned integers
/// are refused unless the backend has them (`has_unsigned`: MySQL).
pub fn unsupported(ty: &Type, has_unsigned: bool) -> Option<(&Type, String)> {
    match ty {
        Type::Paren(paren) => unsupported(&paren.elem, has_unsigned),
        Type::Group(group) => unsupported(&group.elem, has_unsigned),
        Type::Reference(reference) => {
            let owned = match &*reference.elem {
                Type::Path(path) if path.path.is_ident("str") => "String",
                Type::Slice(slice) if primitive(&slice.elem).as_deref() == Some("u8") => "Vec<u8>",
                Type::Slice(_) => "a Vec",
                _ => "the owned type",
            };
            Some((
                ty,
                format!("a column cannot be a reference: a model owns its values — use {owned}"),
            ))
        }
        Type::Tuple(_) => Some((
            ty,
            "a column cannot be a tuple: use one field per column".to_owned(),
        )),
        Type::Array(_) => Some((
            ty,
            "a column cannot be a fixed-size array: use Vec<T> (a PostgreSQL array)".to_owned(),
        )),
        Type::Ptr(_) => Some((ty, "a column cannot be a raw pointer".to_owned())),
        Type::BareFn(_) => Some((ty, "a column cannot be a function pointer".to_owned())),
        _ => {
            if let Some(inner) = option_inner(ty) {
                return unsupported(inner, has_unsigned);
            }
            if let Some(inner) = vec_inner(ty) {
                if primitive(inner).as_deref() == Some("u8") {
                    return None;
                }
                return unsupported(inner, has_unsigned);
            }
            let name = primitive(ty)?;
            let message = match name.as_str() {
                "u8" | "u16" | "u32" | "u64" if has_unsigned => return None,
                "u8" => unsigned(&name, "i16"),
                "u16" => unsigned(&name, "i32"),
                "u32" | "u64" | "u128" | "usize" => unsigned(&name, "i64"),
                "i128" => "PostgreSQL has no 128-bit integer type; sqlx cannot bind i128 — use i64"
                    .to_owned(),
                "isize" => "sqlx cannot bind isize, whose size depends on the platform — use i64"
                    .to_owned(),
                "char" => "sqlx cannot bind char — use String".to_owned(),
                _ => return None,
            };
            Some((ty, message))
        }
    }
}

fn unsigned(name: &str, signed: &str) -> String {
    format!("PostgreSQL has no unsigned integer type; sqlx cannot bind {name} — use {signed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn options() {
        assert!(option_inner(&ty("Option<i32>")).is_some());
        assert!(option_inner(&ty("std::option::Option<i32>")).is_some());
        assert!(option_inner(&ty("i32")).is_none());
        assert!(option_inner(&ty("my::Option<i32>")).is_none());
    }

    #[test]
    fn numbers_and_strings() {
        assert_eq!(number_or_bool(&ty("i32")).as_deref(), Some("i32"));
        assert_eq!(
            number_or_bool(&ty("std::primitive::bool")).as_deref(),
            Some("bool")
        );
        assert_eq!(number_or_bool(&ty("String")), None);
        assert!(is_string(&ty("String")));
        assert!(is_string(&ty("std::string::String")));
        assert!(!is_string(&ty("Vec<u8>")));
    }

    #[test]
    fn unsupported_types() {
        let reason = |s: &str| unsupported(&ty(s), false).map(|(_, why)| why);
        assert!(reason("u32").unwrap().contains("use i64"));
        assert!(reason("Option<u16>").unwrap().contains("use i32"));
        assert!(reason("Vec<u32>").is_some());
        assert!(reason("&str").unwrap().contains("use String"));
        assert!(reason("(i32, i32)").is_some());
        assert!(reason("[u8; 4]").is_some());
        assert!(reason("*const u8").is_some());
        assert!(reason("char").is_some());
        assert!(reason("i128").is_some());
        for fine in [
            "i64",
            "Vec<u8>",
            "Option<Vec<u8>>",
            "String",
            "Option<i32>",
            "MyType",
        ] {
            assert_eq!(reason(fine), None, "{fine}");
        }
    }
}
