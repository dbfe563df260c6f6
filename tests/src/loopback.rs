//! One way to serve an axum router on a free loopback port for a test: the fake Gitea,
//! the fake Kubernetes API and the small servers of single tests all run through
//! [`LoopbackServer`]. The server runs on its own thread and tokio runtime, so it serves
//! sync and async tests alike and outlives no test: dropping it stops it.

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;

/// A free loopback port, bound and not yet served (for servers whose state needs their
/// own address before the router exists).
#[derive(Debug)]
pub struct LoopbackListener {
    name: String,
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl LoopbackListener {
    /// The bound address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `router` on this port until the returned server is dropped.
    pub fn serve(self, router: Router) -> LoopbackServer {
        let LoopbackListener {
            name,
            listener,
            addr,
        } = self;
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let thread_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(thread_name.clone())
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("a tokio runtime for {thread_name}: {e}"));
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .unwrap_or_else(|e| panic!("a tokio listener for {thread_name}: {e}"));
                    tokio::select! {
                        served = axum::serve(listener, router) => {
                            if let Err(e) = served {
                                eprintln!("{thread_name}: the server stopped: {e}");
                            }
                        }
                        _ = stop => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .unwrap_or_else(|e| panic!("a thread for {name}: {e}"));
        LoopbackServer {
            name,
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }
}

/// A router served on `127.0.0.1:<free port>`; dropping it stops the server and waits for
/// its thread.
#[derive(Debug)]
pub struct LoopbackServer {
    name: String,
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LoopbackServer {
    /// Serves `router` on a free loopback port; `name` names its thread and its messages.
    pub fn start(name: &str, router: Router) -> LoopbackServer {
        LoopbackServer::bind(name).serve(router)
    }

    /// A free loopback port for [`LoopbackListener::serve`].
    pub fn bind(name: &str) -> LoopbackListener {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("a free loopback port for {name}: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("a non-blocking listener for {name}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("the address of {name}: {e}"));
        LoopbackListener {
            name: name.to_string(),
            listener,
            addr,
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The name given at the start.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
