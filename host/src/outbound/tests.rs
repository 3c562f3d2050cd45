//! The allow-list: what it parses, what it matches, and that a restricted client never
//! connects outside it, whether the URL holds an address, a name or a redirect.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

/// A local HTTP receiver that counts the connections it accepts and answers each request
/// with a fixed response.
pub(crate) struct Receiver {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `ip`, answering `200 OK`.
    pub async fn start(ip: &str) -> Receiver {
        Self::answering(ip, "HTTP/1.1 200 OK\r\n".to_owned()).await
    }

    /// Listens on `ip`, answering `head` (a status line and headers) with no body.
    pub async fn answering(ip: &str, head: String) -> Receiver {
        let listener = tokio::net::TcpListener::bind((ip, 0))
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("its address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let head = head.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let answer = format!("{head}content-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Receiver {
            addr,
            connections,
            task,
        }
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn list(value: &str) -> AllowList {
    value.parse().expect("a valid allow-list")
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an IP address")
}

fn url(text: &str) -> Url {
    Url::parse(text).expect("a URL")
}

#[test]
fn unset_or_blank_allows_everything_and_only_commas_is_an_error() {
    for blank in ["", "  "] {
        let allow = list(blank);
        assert!(!allow.is_restricted());
        assert!(allow.allows_ip(ip("169.254.169.254")));
        assert!(allow.allows_name("anything.example"));
    }
    assert!(!AllowList::default().is_restricted());
    assert_eq!(
        " , ,".parse::<AllowList>().err(),
        Some(AllowListError::Empty)
    );
}

#[test]
fn cidrs_addresses_and_names_parse_with_spaces_and_a_trailing_comma() {
    let allow =
        list(" 10.0.0.0/8, fd00::/8,192.168.1.7 , ::1, Envs.Example.COM., build-01_x.internal,");
    assert!(allow.is_restricted());
    assert!(allow.allows_ip(ip("10.200.3.4")));
    assert!(allow.allows_ip(ip("fd12:3456::1")));
    assert!(allow.allows_ip(ip("192.168.1.7")));
    assert!(allow.allows_ip(ip("::1")));
    assert!(allow.allows_name("envs.example.com"));
    assert!(allow.allows_name("build-01_x.internal"));
}

#[test]
fn a_malformed_entry_is_refused_by_name_with_the_reason() {
    let cases = [
        ("10.0.0.0/33", "prefix length"),
        ("10.0.0/8", "prefix length"),
        ("example.com/8", "prefix length"),
        ("*.example.com", "wildcards are not supported"),
        ("https://envs.example.com", "without a scheme or a port"),
        ("envs.example.com:8090", "without a scheme or a port"),
        ("bad name", "dot-separated labels"),
        ("-lead.example.com", "dot-separated labels"),
        ("a..b", "dot-separated labels"),
        ("bücher.example", "xn-- form"),
        ("10.0.0", "incomplete IPv4 address"),
    ];
    for (entry, why) in cases {
        let error = format!("10.0.0.0/8, {entry}")
            .parse::<AllowList>()
            .expect_err(entry);
        let text = error.to_string();
        assert!(text.starts_with("GATEHOUSE_OUTBOUND_ALLOW: "), "{text}");
        assert!(text.contains(&format!("{entry:?}")), "{text}");
        assert!(text.contains(why), "{entry}: {text}");
    }
}

#[test]
fn cidrs_match_v4_v6_and_v4_mapped_addresses_and_a_bare_address_matches_only_itself() {
    let allow = list("10.0.0.5/8, 192.168.1.7, fd00::/8, 2001:db8::1");
    // Host bits in a CIDR are ignored: 10.0.0.5/8 is 10.0.0.0/8.
    assert!(allow.allows_ip(ip("10.0.0.1")));
    assert!(allow.allows_ip(ip("10.255.255.255")));
    assert!(!allow.allows_ip(ip("11.0.0.1")));
    assert!(allow.allows_ip(ip("192.168.1.7")));
    assert!(!allow.allows_ip(ip("192.168.1.8")));
    assert!(allow.allows_ip(ip("fdff::1")));
    assert!(!allow.allows_ip(ip("fe80::1")));
    assert!(allow.allows_ip(ip("2001:db8::1")));
    assert!(!allow.allows_ip(ip("2001:db8::2")));
    // An IPv4 address written as IPv6 is still that IPv4 address.
    assert!(allow.allows_ip(ip("::ffff:10.1.2.3")));
    assert!(!allow.allows_ip(ip("::ffff:127.0.0.1")));
}

#[test]
fn names_match_exactly_without_case_or_trailing_dot() {
    let allow = list("Envs.Example.com");
    assert!(allow.allows_name("envs.example.com"));
    assert!(allow.allows_name("ENVS.EXAMPLE.COM."));
    assert!(!allow.allows_name("www.envs.example.com"));
    assert!(!allow.allows_name("envs.example.com.evil.net"));
    assert!(!allow.allows_name("example.com"));
    // A name entry allows no address by itself.
    assert!(!allow.allows_ip(ip("127.0.0.1")));
}

#[test]
fn an_ip_literal_outside_the_list_is_refused_before_sending_and_names_wait_for_resolution() {
    let allow = list("10.0.0.0/8");
    let refused = allow
        .check_url(&url("http://192.168.0.9:8090/env/v1/info"))
        .expect_err("outside the list");
    assert_eq!(
        refused.to_string(),
        "refused by GATEHOUSE_OUTBOUND_ALLOW: 192.168.0.9 is not in the allowed list"
    );
    assert!(allow.check_url(&url("http://[::1]/")).is_err());
    // URLs spell 127.0.0.1 in many ways; they all read as the address.
    assert!(allow.check_url(&url("http://0x7f.1/")).is_err());
    assert!(allow.check_url(&url("https://10.0.0.5/")).is_ok());
    assert!(allow.check_url(&url("https://envs.example.com/")).is_ok());
    assert!(
        AllowList::default()
            .check_url(&url("http://127.0.0.1/"))
            .is_ok()
    );
}

async fn get(allow: &AllowList, url: &str) -> Result<Response, SendError> {
    let client = allow.client_builder().build().expect("a client");
    allow.send(client.get(url)).await
}

fn refusal(result: Result<Response, SendError>) -> String {
    match result {
        Err(SendError::Refused(refused)) => refused.to_string(),
        Err(SendError::Failed(error)) => panic!("expected a refusal, the request failed: {error}"),
        Ok(response) => panic!("expected a refusal, got {}", response.status()),
    }
}

#[tokio::test]
async fn an_address_outside_the_list_is_never_connected_to_and_one_inside_is() {
    let receiver = Receiver::start("127.0.0.1").await;
    let target = format!("http://{}/", receiver.addr);
    let message = refusal(get(&list("10.0.0.0/8"), &target).await);
    assert_eq!(
        message,
        "refused by GATEHOUSE_OUTBOUND_ALLOW: 127.0.0.1 is not in the allowed list"
    );
    assert_eq!(receiver.connections(), 0);

    let answer = get(&list("10.0.0.0/8, 127.0.0.0/8"), &target)
        .await
        .expect("allowed");
    assert_eq!(answer.status(), 200);
    assert_eq!(receiver.connections(), 1);
}

#[tokio::test]
async fn a_name_resolving_outside_the_list_is_refused_unless_the_name_is_listed() {
    let receiver = Receiver::start("127.0.0.1").await;
    let target = format!("http://localhost:{}/", receiver.addr.port());
    let message = refusal(get(&list("10.0.0.0/8"), &target).await);
    assert!(
        message.starts_with("refused by GATEHOUSE_OUTBOUND_ALLOW: localhost resolves to "),
        "{message}"
    );
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(message.ends_with("not in the allowed list"), "{message}");
    assert_eq!(receiver.connections(), 0);

    for allowed in ["LocalHost", "127.0.0.1/32"] {
        let answer = get(&list(allowed), &target).await.expect(allowed);
        assert_eq!(answer.status(), 200);
    }
    assert_eq!(receiver.connections(), 2);
}

#[tokio::test]
async fn a_redirect_out_of_the_list_is_refused_before_the_hop_connects() {
    let elsewhere = Receiver::start("127.0.0.2").await;
    let redirecting = Receiver::answering(
        "127.0.0.1",
        format!(
            "HTTP/1.1 302 Found\r\nlocation: http://{}/\r\n",
            elsewhere.addr
        ),
    )
    .await;
    let start = format!("http://{}/", redirecting.addr);
    let message = refusal(get(&list("127.0.0.1"), &start).await);
    assert_eq!(
        message,
        "refused by GATEHOUSE_OUTBOUND_ALLOW: 127.0.0.2 is not in the allowed list"
    );
    assert_eq!(redirecting.connections(), 1);
    assert_eq!(elsewhere.connections(), 0);

    let answer = get(&list("127.0.0.0/8"), &start).await.expect("allowed");
    assert_eq!(answer.status(), 200);
    assert_eq!(elsewhere.connections(), 1);
}
