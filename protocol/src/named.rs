//! Enums whose variants have stable text names: error codes, token types, hash algorithms,
//! machine applications. Each variant and its name are written once, in one table, from which
//! come the enum, `ALL` (every variant, in declaration order, which is also wire order),
//! `as_str` and `from_name`. Adding a variant to the table is all it takes for every list of
//! them to know it.

/// `named_enum! { #[derive(…)] pub enum Name { /// doc  Variant => "name", … } }`
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident => $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order (the order of the wire's variant indices).
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The variant's stable name, for JSON output, logs, messages and configuration.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant whose `as_str` is `name`.
            pub fn from_name(name: &str) -> Option<$name> {
                $name::ALL.into_iter().find(|v| v.as_str() == name)
            }
        }
    };
}

pub(crate) use named_enum;
