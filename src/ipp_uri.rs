//! Where an IPP URI is posted: `ipp://` is HTTP and `ipps://` is HTTPS. A
//! leaf, so the config can check a printer's URI without reaching up into
//! the IPP client.

/// The server an IPP URI names (`http://host:port` of [`http_url`]), to
/// tell whether two queues are on the same CUPS.
pub fn origin(uri: &str) -> Option<String> {
    let url = http_url(uri)?;
    let after_scheme = url.find("://")? + 3;
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| i + after_scheme);
    Some(url[..end].to_ascii_lowercase())
}

/// The `http(s)://` URL an IPP URI is posted to: `ipp://` is HTTP and
/// `ipps://` is HTTPS, both on port 631 unless the URI says otherwise.
pub fn http_url(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    let has_port = match host.rfind(']') {
        Some(end) => host[end..].contains(':'),
        None => host.contains(':'),
    };
    let (http_scheme, default_port) = match scheme.to_ascii_lowercase().as_str() {
        "ipp" => ("http", Some(631)),
        "ipps" => ("https", Some(631)),
        "http" => ("http", None),
        "https" => ("https", None),
        _ => return None,
    };
    Some(match (has_port, default_port) {
        (false, Some(port)) => format!("{http_scheme}://{host}:{port}{path}"),
        _ => format!("{http_scheme}://{host}{path}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipp_uris_map_to_http_urls() {
        let cases = [
            (
                "ipp://localhost:8631/ipp/print",
                Some("http://localhost:8631/ipp/print"),
            ),
            (
                "ipp://printer.lan/printers/q1",
                Some("http://printer.lan:631/printers/q1"),
            ),
            (
                "ipps://printer.lan/ipp",
                Some("https://printer.lan:631/ipp"),
            ),
            ("ipp://[::1]/ipp", Some("http://[::1]:631/ipp")),
            ("ipp://[::1]:9100/ipp", Some("http://[::1]:9100/ipp")),
            ("http://127.0.0.1:631/x", Some("http://127.0.0.1:631/x")),
            ("ipp://host", Some("http://host:631/")),
            ("lpd://host/q", None),
            ("ipp:///nohost", None),
            ("printer", None),
        ];
        for (uri, want) in cases {
            assert_eq!(http_url(uri).as_deref(), want, "{uri}");
        }
    }
}
