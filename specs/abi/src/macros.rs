//! Declarative helpers that keep each ABI enum enumerable and named.

/// Declares a `#[repr($ty)]` enum of ABI numbers with:
/// `ALL` (every variant, in declaration order), `raw()`, `name()` (the snake_case
/// name used in `specs/`), `TryFrom<$ty>` and `from_reg(u64)`, both failing with the
/// given [`crate::Error`] for a number that is not a variant.
macro_rules! abi_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $ty:ident, unknown = $unknown:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $value:literal => $text:literal,
            )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr($ty)]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant = $value,
            )+
        }

        impl $name {
            /// Every variant, in declaration (and numeric) order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// Every variant's `specs/` name and number, in declaration order.
            pub const VALUES: &'static [(&'static str, u64)] = &[$(($text, $value as u64)),+];

            /// The number carried in a register.
            pub const fn raw(self) -> $ty {
                self as $ty
            }

            /// The snake_case name used for this value in `specs/`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }

            /// Decodes a number; `None` if it names no variant.
            pub const fn from_raw(raw: $ty) -> Option<Self> {
                match raw {
                    $($value => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Decodes a whole argument register. Bits above the width of the
            /// number must be zero.
            pub const fn from_reg(reg: u64) -> Result<Self, $crate::Error> {
                if reg > <$ty>::MAX as u64 {
                    return Err($crate::Error::$unknown);
                }
                match Self::from_raw(reg as $ty) {
                    Some(v) => Ok(v),
                    None => Err($crate::Error::$unknown),
                }
            }
        }

        impl TryFrom<$ty> for $name {
            type Error = $crate::Error;
            fn try_from(raw: $ty) -> Result<Self, $crate::Error> {
                Self::from_raw(raw).ok_or($crate::Error::$unknown)
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                v as $ty
            }
        }
    };
}

/// Declares a bit-set newtype over `u64`/`u32` with named single-bit constants,
/// `ALL` (every named bit with its name), `bits()`, `from_bits_retain()`,
/// `contains()`, `union()` and `|`.
macro_rules! abi_flags {
    (
        $(#[$meta:meta])*
        pub struct $name:ident: $ty:ident {
            $(
                $(#[$vmeta:meta])*
                const $flag:ident = $bit:literal => $text:literal;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
        #[repr(transparent)]
        pub struct $name($ty);

        impl $name {
            $(
                $(#[$vmeta])*
                pub const $flag: Self = Self(1 << $bit);
            )*
            /// No bit set.
            pub const EMPTY: Self = Self(0);
            /// Every defined flag with its name (as written in `specs/`) and bit number.
            pub const ALL: &'static [(&'static str, u32, Self)] = &[$(($text, $bit, Self::$flag)),*];
            /// Every defined flag's `specs/` name and bit number.
            pub const BITS: &'static [(&'static str, u64)] = &[$(($text, $bit)),*];
            /// Every defined bit.
            pub const KNOWN: Self = Self(0 $(| (1 << $bit))*);

            /// The raw bits.
            pub const fn bits(self) -> $ty {
                self.0
            }
            /// Wraps raw bits, keeping bits this version does not know.
            pub const fn from_bits_retain(bits: $ty) -> Self {
                Self(bits)
            }
            /// Wraps raw bits; `None` if a bit this version does not know is set.
            pub const fn from_bits(bits: $ty) -> Option<Self> {
                if bits & !Self::KNOWN.0 == 0 { Some(Self(bits)) } else { None }
            }
            /// Whether every bit of `other` is set in `self`.
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }
            /// The bits of both.
            pub const fn union(self, other: Self) -> Self {
                Self(self.0 | other.0)
            }
        }

        impl core::ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                self.union(rhs)
            }
        }

        impl core::ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                *self = self.union(rhs);
            }
        }
    };
}
