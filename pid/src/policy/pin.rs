//! Enrollment PIN rules: privacyIDEA's `otp_pin_minlength`, `otp_pin_maxlength`,
//! `otp_pin_contents`, and pi's `otp_pin_required`.

use super::action::Action;
use super::error::{Fix, PinRefused, PolicyError};

/// privacyIDEA's `otp_pin_contents`: classes `c` (letters), `n` (digits), `s` (anything else).
/// `cn`: each listed class must appear; `-s`: the listed classes may not appear; `+cn`: only
/// the listed classes may appear, with at least one character of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinContents {
    pub(super) text: String,
    mode: char,
    classes: Vec<char>,
}

impl PinContents {
    pub(super) fn parse(text: &str) -> Result<PinContents, PolicyError> {
        let (mode, rest) = match text.chars().next() {
            Some(m @ ('+' | '-')) => (m, &text[1..]),
            _ => (' ', text),
        };
        let classes: Vec<char> = rest.chars().collect();
        if classes.is_empty() || classes.iter().any(|c| !matches!(c, 'c' | 'n' | 's')) {
            return Err(PolicyError::Refused {
                action: Action::PinContents,
                written: text.to_owned(),
                fix: Fix::PinContents,
            });
        }
        Ok(PinContents {
            text: text.to_owned(),
            mode,
            classes,
        })
    }

    fn class_of(c: char) -> char {
        if c.is_alphabetic() {
            'c'
        } else if c.is_numeric() {
            'n'
        } else {
            's'
        }
    }

    /// `Err` says what the PIN lacks or must not contain.
    pub fn check(&self, pin: &str) -> Result<(), PinRefused> {
        let present: Vec<char> = pin.chars().map(Self::class_of).collect();
        let has = |class: &char| present.contains(class);
        let ok = match self.mode {
            '-' => !self.classes.iter().any(has),
            '+' => self.classes.iter().all(has) && present.iter().all(|c| self.classes.contains(c)),
            _ => self.classes.iter().all(has),
        };
        if ok {
            Ok(())
        } else {
            Err(PinRefused::Contents(self.text.clone()))
        }
    }
}

/// The enrollment scope's PIN rules.
#[derive(Clone, Debug, Default)]
pub struct PinRules {
    pub min_len: Option<u32>,
    pub max_len: Option<u32>,
    pub contents: Option<PinContents>,
    /// `otp_pin_required`: a token may not be enrolled without a PIN.
    pub required: bool,
}

impl PinRules {
    /// Check a PIN about to be set (`None`: no PIN). The message says what the rule wants.
    pub fn check(&self, pin: Option<&str>) -> Result<(), PinRefused> {
        let pin = match pin {
            Some(p) if !p.is_empty() => p,
            _ if self.required || self.min_len.is_some_and(|m| m > 0) => {
                return Err(PinRefused::Required)
            }
            _ => return Ok(()),
        };
        let len = pin.chars().count() as u32;
        if let Some(min) = self.min_len.filter(|m| len < *m) {
            return Err(PinRefused::TooShort(min));
        }
        if let Some(max) = self.max_len.filter(|m| len > *m) {
            return Err(PinRefused::TooLong(max));
        }
        match &self.contents {
            Some(c) => c.check(pin),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_contents_follow_privacyidea() {
        let check = |rule: &str, pin: &str| PinContents::parse(rule).unwrap().check(pin).is_ok();
        assert!(check("cn", "abc1") && !check("cn", "abcd") && !check("cn", "1234"));
        assert!(check("-s", "abc1") && !check("-s", "abc!"));
        assert!(check("+cn", "ab12") && !check("+cn", "ab1!") && !check("+cn", "abcd"));
        let rules = PinRules {
            min_len: Some(4),
            max_len: Some(6),
            contents: None,
            required: false,
        };
        assert!(
            rules.check(None).is_err(),
            "a minimum length requires a PIN"
        );
        assert!(rules.check(Some("abc")).is_err() && rules.check(Some("abcdefg")).is_err());
        assert!(rules.check(Some("abcd")).is_ok());
        assert_eq!(
            rules.check(Some("abc")).unwrap_err().to_string(),
            "the PIN must have at least 4 characters"
        );
    }
}
