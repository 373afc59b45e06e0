//! What the check pipeline cannot decide from the token records and the rules alone.
//!
//! `check::evaluate` decides a login from the user's token records, what the user typed, the
//! rules of the policies and the time, all passed in. Whatever else a decision needs goes
//! through `Verifier`: a token's sealed secret, a PIN hash, the user store's password check,
//! the Yubico validation servers, and the tokens of other users a 4eyes rule may take. The
//! daemon's `State` answers from its key file, argon2, the realms' user stores and the network;
//! the pipeline's unit tests answer from a table. A validation server of another kind (a
//! privacyIDEA server for its `remote` token type) is one more question here, beside
//! `verify_yubico`, without the pipeline learning about networks or keys.
//!
//! Invariant: the pipeline never reads the clock, the key file or the store except through
//! these questions, so what it decides depends only on its inputs and their answers.

use crate::error::PidError;
use crate::store::{TokenRecord, Versioned};
use crate::users::ResolvedUser;
use protocol::Secret;
use std::future::Future;
use zeroize::Zeroizing;

/// The questions the check pipeline asks while it decides a login (see the module).
pub trait Verifier: Sync {
    /// The token's secret (key, password, list …), unsealed.
    fn open_secret(&self, rec: &TokenRecord) -> Result<Zeroizing<Vec<u8>>, PidError>;

    /// `secret` sealed for the token `serial`, when using the token changed it (a TAN is
    /// crossed off its list).
    fn seal_secret(&self, serial: &str, secret: &[u8]) -> Result<Vec<u8>, PidError>;

    /// Whether `pin` is the PIN whose hash is `stored`. A token without a PIN matches only an
    /// empty PIN part (privacyIDEA `check_pin`).
    fn verify_pin(
        &self,
        stored: Option<&str>,
        pin: &str,
    ) -> impl Future<Output = Result<bool, PidError>> + Send;

    /// Wait as long as a PIN check takes, without using the CPU. A wrong OTP on the user's only
    /// token is refused without checking the PIN (a guessed OTP must not buy an argon2 run), but
    /// answered this much later: otherwise the answer's timing would tell a guesser that the
    /// OTP part was right and only the PIN wrong.
    fn wait_as_long_as_a_pin_check(&self) -> impl Future<Output = ()> + Send;

    /// Whether `password` is `user`'s password in the user store that found them (LDAP bind,
    /// PAM, crypt hash). An error: the store could not answer, and the login fails closed.
    fn check_user_password(
        &self,
        user: &ResolvedUser,
        password: Secret,
    ) -> impl Future<Output = Result<bool, PidError>> + Send;

    /// Whether the Yubico validation servers accept `otp`. An error: none could be asked, and
    /// the login fails closed.
    fn verify_yubico(&self, otp: &str) -> impl Future<Output = Result<bool, PidError>> + Send;

    /// Up to `limit` tokens of `realm`, with their compare-and-swap witnesses: the tokens a
    /// 4eyes rule may take codes from.
    fn tokens_in_realm(&self, realm: &str, limit: usize) -> Result<Vec<Versioned>, PidError>;
}
