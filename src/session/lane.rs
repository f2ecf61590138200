//! A lane: one connection slot of a session, which is one blk-mq hardware
//! queue (MC/S). It lives as long as the session and owns what each
//! connection needs of its own: the transmit side (its lock serialises PDUs
//! on the lane's socket), the transmit flags, and the receive and transmit
//! work items; its socket's callbacks come here. The socket itself
//! (`State::conns`) is replaced at each relogin; the protocol state of the
//! lane (ExpStatSN, job rings, ping) is the engine's (`proto::session::lane`).
//!
//! The session keeps its lanes in `State::lanes` and each lane keeps its
//! session: `Session::close` takes the lanes out, which ends the cycle.

use super::*;

/// One connection slot of a session.
#[pin_data]
pub(crate) struct Lane {
    pub(super) s: Arc<Session>,
    /// Its index: the hardware queue and the engine's lane.
    pub(super) idx: usize,
    /// Transmit side: holding it serialises PDUs on the lane's socket.
    /// Taken only through `hold_tx`/`try_hold_tx`, whose release sends what
    /// is queued.
    #[pin]
    pub(super) tx: TryMutex<TxSide>,
    /// Lock-free flags and counters of the transmit side.
    pub(super) txf: TxFlags,
    #[pin]
    rx_work: Work<Lane, 0>,
    #[pin]
    tx_work: Work<Lane, 1>,
}

impl_has_work! {
    impl HasWork<Self, 0> for Lane { self.rx_work }
    impl HasWork<Self, 1> for Lane { self.tx_work }
}

impl Lane {
    /// Lane `idx` of session `s`, with its transmit side's bounce buffer.
    pub(super) fn new(s: Arc<Session>, idx: usize) -> Result<Arc<Self>> {
        // Sized for the largest segment any relogin may negotiate.
        let txside = TxSide {
            buf: KVVec::from_elem(0u8, MAX_TX_SEGMENT as usize, GFP_KERNEL)?,
            pages: TxPages::new()?,
            out: None,
            burst: None,
            last_job: false,
        };
        Arc::pin_init(
            pin_init!(Lane {
                s,
                idx,
                tx <- new_try_mutex!(txside, "iscsi_rs::Lane::tx"),
                txf: TxFlags::default(),
                rx_work <- new_work!("iscsi_rs::Lane::rx_work"),
                tx_work <- new_work!("iscsi_rs::Lane::tx_work"),
            }),
            GFP_KERNEL,
        )
    }

    /// Has the RX work read the lane's socket.
    pub(super) fn kick_rx(this: ArcBorrow<'_, Self>) {
        // Already queued is fine: the queued run will see the new bytes.
        let _ = this
            .s
            .wq
            .io
            .queue()
            .enqueue::<Arc<Lane>, 0>(Arc::from(this));
    }

    /// Has the TX work send what is queued on the lane.
    pub(super) fn kick_tx(this: ArcBorrow<'_, Self>) {
        let _ = this
            .s
            .wq
            .io
            .queue()
            .enqueue::<Arc<Lane>, 1>(Arc::from(this));
    }

    /// The lane's current connection, if one runs on it.
    pub(super) fn conn(&self, st: &State) -> Option<Arc<SessionConn>> {
        st.conns.get(self.idx).and_then(Clone::clone)
    }
}

impl SocketEvents for Lane {
    fn data_ready(this: ArcBorrow<'_, Self>, reading: &mut Reading<'_>) {
        Lane::rx_ready(this, reading);
    }

    fn state_change(this: ArcBorrow<'_, Self>) {
        // The RX work notices EOF or an error from recvmsg.
        Lane::kick_rx(this);
    }

    fn write_space(this: ArcBorrow<'_, Self>) {
        Lane::tx_room(this);
    }
}

impl WorkItem<0> for Lane {
    type Pointer = Arc<Lane>;

    fn run(this: Arc<Lane>) {
        Lane::run_rx(this);
    }
}

impl WorkItem<1> for Lane {
    type Pointer = Arc<Lane>;

    fn run(this: Arc<Lane>) {
        Lane::run_tx(this);
    }
}
