//! Query-string parameters, read from the raw query so the errors are the
//! API's own (`` `limit` must be from 1 to 1000 ``), not a framework's.

use super::response::AdminError;

/// The first value of `name`, percent-decoded.
pub fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A whole-number parameter, if given.
pub fn number(query: Option<&str>, name: &str) -> Result<Option<u64>, AdminError> {
    param(query, name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| AdminError::BadRequest(format!("`{name}` must be a whole number")))
        })
        .transpose()
}

/// `?limit=`: from 1 to `max`, `default` when absent.
pub fn limit(query: Option<&str>, default: usize, max: usize) -> Result<usize, AdminError> {
    let limit = number(query, "limit")?.map_or(default, |l| l as usize);
    if !(1..=max).contains(&limit) {
        return Err(AdminError::BadRequest(format!(
            "`limit` must be from 1 to {max}"
        )));
    }
    Ok(limit)
}

/// `state=`: one of the envelope states, or absent.
pub fn state(query: Option<&str>) -> Result<Option<crate::event::EnvelopeState>, AdminError> {
    match param(query, "state") {
        None => Ok(None),
        Some(s) => crate::event::EnvelopeState::parse(&s)
            .map(Some)
            .ok_or_else(|| {
                AdminError::BadRequest(format!(
                    "state `{s}` is not one of open, in_signing, completed, archived, cancelled"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_decoded_and_checked() {
        let q = Some("endpoint=a%3Ab&limit=5&before=x");
        assert_eq!(param(q, "endpoint").as_deref(), Some("a:b"));
        assert_eq!(limit(q, 50, 1000).unwrap(), 5);
        assert_eq!(limit(None, 50, 1000).unwrap(), 50);
        assert!(limit(Some("limit=0"), 50, 1000).is_err());
        assert!(limit(Some("limit=1001"), 50, 1000).is_err());
        let e = number(q, "before").unwrap_err();
        assert_eq!(e.to_string(), "`before` must be a whole number");
    }
}
