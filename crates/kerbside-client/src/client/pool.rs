//! The pool of connections of a [`Client`]: per origin, identity and proxy,
//! preferring authenticated ones.

use super::{Client, PoolKey};
use crate::conn::Conn;

impl Client {
    /// A pooled connection, preferring authenticated ones when asked.
    pub(super) fn checkout(
        &self,
        key: &PoolKey,
        prefer_authenticated: bool,
        h1_only: bool,
    ) -> Option<Conn> {
        let mut pool = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conns = pool.get_mut(key)?;
        conns.retain(|c| !c.is_closed());
        let usable = |c: &Conn| c.is_ready() && !(h1_only && c.is_h2());
        let index = conns
            .iter()
            .position(|c| usable(c) && c.authenticated == prefer_authenticated)
            .or_else(|| conns.iter().position(usable))?;
        if let crate::conn::Sender::H2(sender) = &conns[index].sender {
            // HTTP/2 connections are shared: hand out a clone, keep the original.
            let c = &conns[index];
            return Some(Conn {
                id: c.id,
                sender: crate::conn::Sender::H2(sender.clone()),
                channel_binding: c.channel_binding.clone(),
                authenticated: false,
                via_proxy: c.via_proxy,
            });
        }
        Some(conns.swap_remove(index))
    }

    pub(super) fn checkin(&self, key: PoolKey, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        let mut pool = self
            .shared
            .pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let conns = pool.entry(key).or_default();
        if conns.iter().any(|c| c.id == conn.id) {
            return; // an HTTP/2 clone
        }
        conns.push(conn);
    }
}
