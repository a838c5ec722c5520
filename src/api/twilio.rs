//! Twilio's request signature (`X-Twilio-Signature`): base64 of an HMAC-SHA1 keyed with
//! the account's auth token, over the URL Twilio posted to followed by the name and
//! value of every POST parameter, sorted by name. It is how a webhook proves it comes
//! from Twilio, so a phone number alone cannot be spoofed into an acknowledgement.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// The header Twilio signs every webhook with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// True when `signature` is Twilio's for a POST of `params` to `url` under
/// `auth_token`; compared in constant time.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(auth_token.as_bytes()) else {
        return false;
    };
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    // Values break ties so a repeated name signs the same whatever order it came in.
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Twilio's webhook security documentation (the one their
    /// SDKs test against): auth token `12345`, this URL and these parameters.
    fn documented() -> (&'static str, Vec<(String, String)>) {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ];
        (
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            params
                .iter()
                .rev()
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect(),
        )
    }

    #[test]
    fn twilios_published_example_verifies() {
        let (url, params) = documented();
        assert!(verify(
            "12345",
            url,
            &params,
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        ));
    }

    #[test]
    fn any_change_to_token_url_or_params_fails() {
        let (url, params) = documented();
        let signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
        assert!(!verify("12346", url, &params, signature));
        assert!(!verify("12345", &format!("{url}&x=1"), &params, signature));
        let mut changed = params.clone();
        changed[0].1 = "+18005551213".into();
        assert!(!verify("12345", url, &changed, signature));
        assert!(!verify("12345", url, &params, ""));
        assert!(!verify("12345", url, &params, "not base64!"));
    }
}
