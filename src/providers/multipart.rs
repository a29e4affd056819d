//! Just enough `multipart/form-data` (and urlencoded form) to read one named field,
//! as Dropbox Sign posts its event in the form field `json`. Bounded by the body
//! limit; never allocates more than the field it returns.

use std::borrow::Cow;

use memchr::memmem;

/// Reads field `name` from a form body (`multipart/form-data` or
/// `application/x-www-form-urlencoded`); any other content type is refused.
pub fn form_field<'a>(
    content_type: &str,
    body: &'a [u8],
    name: &str,
) -> Result<Cow<'a, [u8]>, &'static str> {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => {
            let boundary = boundary(content_type).ok_or("multipart boundary missing")?;
            multipart_field(body, boundary.as_bytes(), name).map(Cow::Borrowed)
        }
        "application/x-www-form-urlencoded" => form_urlencoded::parse(body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| Cow::Owned(v.into_owned().into_bytes()))
            .ok_or("form field missing"),
        _ => Err("unsupported content type"),
    }
}

fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 70)
    })
}

fn multipart_field<'a>(
    body: &'a [u8],
    boundary: &[u8],
    name: &str,
) -> Result<&'a [u8], &'static str> {
    let delim = [b"--", boundary].concat();
    let next_delim = [b"\r\n--", boundary].concat();
    let mut pos = memmem::find(body, &delim).ok_or("multipart delimiter missing")? + delim.len();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Err("form field missing");
        }
        let rest = rest.strip_prefix(b"\r\n").ok_or("malformed multipart")?;
        let head_end = memmem::find(rest, b"\r\n\r\n").ok_or("malformed multipart headers")?;
        let head =
            std::str::from_utf8(&rest[..head_end]).map_err(|_| "malformed multipart headers")?;
        let content = &rest[head_end + 4..];
        let end = memmem::find(content, &next_delim).ok_or("unterminated multipart part")?;
        if part_name(head).as_deref() == Some(name) {
            return Ok(&content[..end]);
        }
        pos = body.len() - content.len() + end + next_delim.len();
    }
}

/// The `name` of a part's `Content-Disposition: form-data; name="..."`.
fn part_name(head: &str) -> Option<String> {
    head.lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?
        .split(';')
        .find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"').to_owned())
        })
}

/// Builds a one-field multipart body (for `countersign sign` and tests).
pub fn encode_single(boundary: &str, name: &str, value: &[u8]) -> Vec<u8> {
    let mut out =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
            .into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=\"XyZ\"";

    #[test]
    fn finds_the_named_part_among_others() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nnope\r\n--XyZ\r\nContent-Disposition: form-data; name=\"json\"\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n";
        assert_eq!(&*form_field(CT, body, "json").unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn round_trips_encode_single() {
        let body = encode_single("b0und", "json", b"{\"x\":\"--b0un\"}");
        let ct = "multipart/form-data; boundary=b0und";
        assert_eq!(
            &*form_field(ct, &body, "json").unwrap(),
            b"{\"x\":\"--b0un\"}"
        );
    }

    #[test]
    fn reports_what_is_wrong() {
        assert_eq!(
            form_field("multipart/form-data", b"", "json"),
            Err("multipart boundary missing")
        );
        assert_eq!(
            form_field(CT, b"garbage", "json"),
            Err("multipart delimiter missing")
        );
        assert_eq!(
            form_field(CT, b"--XyZ--\r\n", "json"),
            Err("form field missing")
        );
        assert_eq!(
            form_field(
                CT,
                b"--XyZ\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{",
                "json"
            ),
            Err("unterminated multipart part")
        );
        assert_eq!(
            form_field("text/plain", b"", "json"),
            Err("unsupported content type")
        );
    }

    #[test]
    fn urlencoded_and_json() {
        let body = b"json=%7B%22a%22%3A1%7D";
        let got = form_field("application/x-www-form-urlencoded", body, "json").unwrap();
        assert_eq!(&*got, b"{\"a\":1}");
        assert_eq!(
            form_field("application/json", b"{}", "json"),
            Err("unsupported content type"),
            "a plain JSON body is not a form"
        );
    }
}
