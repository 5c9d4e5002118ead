//! TCP_NODELAY on keyfall's TCP connections. Without it a TLS set-up waits
//! twice on the server's delayed ACK (~90 ms of a 250 ms `keyfall resolve`).
//! sqlx-core sets it since 0.9.1 (keyfall carried a patched copy until
//! then); this looks at a live connection's socket, so the day a release
//! drops it, a test says so.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use sqlx::ConnectOptions;

/// Whether this process has a TCP socket connected to `port` on loopback,
/// and if so whether TCP_NODELAY is set on it.
fn nodelay_of_socket_to(port: u16) -> Option<bool> {
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        // SAFETY: getpeername and getsockopt only read into the buffers
        // given, sized as passed; a descriptor that is not a socket fails.
        unsafe {
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::getpeername(fd, (&raw mut addr).cast(), &mut len) != 0
                || i32::from(addr.sin_family) != libc::AF_INET
                || u16::from_be(addr.sin_port) != port
            {
                continue;
            }
            let mut on: libc::c_int = 0;
            let mut on_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            if libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, (&raw mut on).cast(), &mut on_len) == 0 {
                return Some(on != 0);
            }
        }
    }
    None
}

#[tokio::test]
async fn keyfalls_tcp_connections_set_tcp_nodelay() {
    // A listener that accepts and says nothing: the client connects, sets
    // its socket options and waits for the server's answer, which is when
    // its socket is looked at. No PostgreSQL is needed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        std::thread::sleep(Duration::from_secs(10));
        drop(stream);
    });
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .port(port)
        .username("nobody")
        .ssl_mode(sqlx::postgres::PgSslMode::Disable);
    let client = tokio::spawn(async move { options.connect().await });
    let deadline = Instant::now() + Duration::from_secs(8);
    let seen = loop {
        if let Some(on) = nodelay_of_socket_to(port) {
            break on;
        }
        assert!(Instant::now() < deadline, "keyfall's connection to 127.0.0.1:{port} never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    client.abort();
    assert!(
        seen,
        "TCP_NODELAY is not set on a TCP connection: sqlx dropped it (keyfall pinned sqlx-core >= 0.9.1 for it)"
    );
    drop(held);
}
