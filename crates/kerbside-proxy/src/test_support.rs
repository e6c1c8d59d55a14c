//! Helpers shared by this crate's unit tests.

use tokio::net::{TcpListener, TcpStream};

/// A connected pair of loopback TCP sockets.
pub(crate) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (a.unwrap(), b.unwrap().0)
}
