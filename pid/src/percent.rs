//! RFC 3986 percent-encoding of what pid puts into URLs and form bodies: the SMS gateway's
//! query string and body, the Yubico validation query, the otpauth:// URL of an enrollment.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved characters: letters, digits, `-`, `.`, `_` and `~`.
/// Stricter than any one place needs, so a value never ends its field early (`&`, `=`, `#`,
/// `:`, `/` and `+` are all encoded).
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `s` with every byte but the unreserved characters written `%XX` (upper-case hex).
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_characters_stay_as_they_are() {
        assert_eq!(percent_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(percent_encode("+49 170"), "%2B49%20170");
        assert_eq!(
            percent_encode("a&b=c#d/e:f?g%"),
            "a%26b%3Dc%23d%2Fe%3Af%3Fg%25"
        );
        assert_eq!(percent_encode("é\n"), "%C3%A9%0A");
    }
}
