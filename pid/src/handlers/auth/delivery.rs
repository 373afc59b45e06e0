//! Codes that leave the daemon during a login: the code of an e-mail or SMS challenge, sent
//! before the challenge is asked, and `emailautosend` / `smsautosend`, the next code sent after
//! a login so that the next one can be PIN and code in one answer.

use super::{Login, Turn};
use crate::error::PidError;
use crate::policy::{self, Action};
use crate::tokens::{Channel, Delivery};
use crate::users::ResolvedUser;
use crate::Live;

/// Send a challenge's code with the texts the policies choose (privacyIDEA's defaults: the code
/// alone, subject "Your OTP").
pub(super) async fn deliver(
    live: &Live,
    ctx: &policy::Context<'_>,
    user: &ResolvedUser,
    d: &Delivery,
) -> Result<(), PidError> {
    let tags = [
        ("otp", d.otp.as_str()),
        ("serial", d.serial.as_str()),
        ("user", user.owner.login.as_str()),
        ("realm", user.owner.realm.as_str()),
    ];
    let (text_action, default) = match d.channel {
        Channel::Email => (Action::EmailText, "<otp>"),
        Channel::Sms => (Action::SmsText, "<otp>"),
    };
    let body = zeroize::Zeroizing::new(
        live.policies
            .text(text_action, ctx, &tags)
            .unwrap_or_else(|| policy::fill_tags(default, &tags)),
    );
    let subject = live
        .policies
        .text(Action::EmailSubject, ctx, &tags)
        .unwrap_or_else(|| "Your OTP".to_owned());
    crate::delivery::send(&live.config, d, &subject, body).await
}

/// `emailautosend` / `smsautosend`: after a login with an e-mail or SMS token, send its next code
/// right away. A failure is logged; the login it follows stands.
pub(super) async fn autosend(turn: &Turn<'_>, login: &Login, serials: &[String]) {
    let (state, live) = (turn.state, &turn.live);
    let ctx = login.context();
    // The common case costs two policy look-ups, no store read.
    let email = live.policies.flag(Action::EmailAutoSend, &ctx).is_some();
    let sms = live.policies.flag(Action::SmsAutoSend, &ctx).is_some();
    if !email && !sms {
        return;
    }
    for serial in serials {
        let Ok(Some(v)) = state.store.get_token(serial) else {
            continue;
        };
        let wanted = match v.rec.token_type {
            protocol::TokenType::Email => email,
            protocol::TokenType::Sms => sms,
            _ => false,
        };
        if !wanted {
            continue;
        }
        let sent = async {
            let key = state.cipher.open(&v.rec.serial, "otpkey", &v.rec.otpkey)?;
            let c = crate::tokens::algorithm(v.rec.token_type)
                .challenge(&v.rec, &key, state.clock.now())
                .map_err(|e| PidError::Delivery(e.to_string()))?;
            match c.delivery {
                Some(d) => deliver(live, &ctx, &login.user, &d).await,
                None => Ok(()),
            }
        }
        .await;
        if let Err(e) = sent {
            tracing::error!(
                error = %crate::error::chain(&e),
                serial = %serial,
                "autosend: the next code was not sent"
            );
        }
    }
}
