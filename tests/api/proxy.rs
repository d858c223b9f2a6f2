//! A TCP proxy a test can cut: it forwards 127.0.0.1:<port> to an upstream
//! server, and `close` both refuses new connections (the port is released)
//! and cuts every open one, as a database going away would; `reopen` listens
//! on the same port again; `hang` accepts connections and never answers, as
//! a server that stopped responding would. Plain threads, so it runs whatever the test's
//! runtime does.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

pub struct TcpProxy {
    port: u16,
    upstream: SocketAddr,
    /// Both ends of every connection forwarded so far, to cut on `close`.
    streams: Arc<Mutex<Vec<TcpStream>>>,
    hanging: Arc<AtomicBool>,
    acceptor: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl TcpProxy {
    /// Listens on a free local port, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port for the proxy");
        let port = listener.local_addr().expect("the proxy's port").port();
        let mut proxy = Self {
            port,
            upstream,
            streams: Arc::default(),
            hanging: Arc::default(),
            acceptor: None,
        };
        proxy.accept_on(listener);
        proxy
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Cuts open connections, and holds new ones open without a word.
    pub fn hang(&mut self) {
        // Under the lock `forward` registers connections with, so one being
        // set up right now is either cut here or sees the flag.
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        self.hanging.store(true, Ordering::Release);
        cut(&mut streams);
    }

    /// Forwards again (the connections held while hanging are cut).
    pub fn resume(&mut self) {
        self.hanging.store(false, Ordering::Release);
        self.cut_all();
    }

    /// Stops listening (new connections are refused) and cuts open ones.
    pub fn close(&mut self) {
        if let Some((stop, acceptor)) = self.acceptor.take() {
            stop.store(true, Ordering::Release);
            acceptor.join().expect("the proxy's accept loop");
        }
        self.cut_all();
    }

    fn cut_all(&self) {
        cut(&mut self.streams.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Listens on the same port again.
    pub fn reopen(&mut self) {
        assert!(self.acceptor.is_none(), "the proxy is open already");
        // std sets SO_REUSEADDR, so cut connections in TIME_WAIT do not block this.
        let listener = (0..50)
            .find_map(|_| {
                TcpListener::bind(("127.0.0.1", self.port))
                    .inspect_err(|_| thread::sleep(Duration::from_millis(100)))
                    .ok()
            })
            .expect("the proxy's port again");
        self.accept_on(listener);
    }

    fn accept_on(&mut self, listener: TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let stop = Arc::new(AtomicBool::new(false));
        let upstream = self.upstream;
        let streams = self.streams.clone();
        let hanging = self.hanging.clone();
        let stopping = stop.clone();
        let acceptor = thread::spawn(move || {
            while !stopping.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((client, _)) if hanging.load(Ordering::Acquire) => {
                        streams
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(client);
                    }
                    Ok((client, _)) => {
                        let _ = forward(client, upstream, &streams, &hanging);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener drops here: the port refuses connections.
        });
        self.acceptor = Some((stop, acceptor));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.close();
    }
}

fn cut(streams: &mut Vec<TcpStream>) {
    for stream in streams.drain(..) {
        let _ = stream.shutdown(Shutdown::Both);
    }
}

fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    streams: &Mutex<Vec<TcpStream>>,
    hanging: &AtomicBool,
) -> io::Result<()> {
    client.set_nonblocking(false)?;
    let server = TcpStream::connect(upstream)?;
    {
        let mut streams = streams.lock().unwrap_or_else(|e| e.into_inner());
        if hanging.load(Ordering::Acquire) {
            // `hang` came while this connection was being set up: hold it
            // unanswered like the ones accepted after.
            streams.push(client);
            return Ok(());
        }
        streams.push(client.try_clone()?);
        streams.push(server.try_clone()?);
    }
    for (mut from, mut to) in [(client.try_clone()?, server.try_clone()?), (server, client)] {
        thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    Ok(())
}

/// The `host:port` of a `postgres://` URL (5432 when it names none).
pub fn postgres_address(url: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let authority = authority(url);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    with_port
        .to_socket_addrs()
        .expect("a resolvable PostgreSQL address")
        .next()
        .expect("an address")
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
pub fn through_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let authority = authority(url);
    let tail = &rest[authority.len()..];
    let credentials = authority
        .rsplit_once('@')
        .map_or(String::new(), |(credentials, _)| format!("{credentials}@"));
    format!("{scheme}://{credentials}127.0.0.1:{port}{tail}")
}

fn authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?']).next().unwrap_or(rest)
}
