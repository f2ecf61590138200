//! Losing and replacing connections: `fail` (ERL 0 recovery starts: every
//! connection of the session goes), handing commands back, blocking the
//! host, and the HANDOFF of a new leading socket.

use super::*;

impl Session {
    /// Fails the connection: logs why, shuts the socket down, hands every
    /// in-flight command back for retry and asks the daemon for a relogin (the
    /// watchdog blocks the host). `cause` is one of `uapi::reason`. Idempotent
    /// per connection; a failure while the session is being logged out for
    /// good only ends it.
    pub(crate) fn fail(&self, cause: u32, why: fmt::Arguments<'_>) {
        self.fail_on(None, cause, why)
    }

    /// [`Session::fail`] for a failure seen on lane `lane` (`None`: not on
    /// one connection in particular).
    pub(crate) fn fail_on(&self, lane: Option<usize>, cause: u32, why: fmt::Arguments<'_>) {
        let (conns, generation, delay_ms, result) = {
            let mut st = self.state.lock();
            match st.e.phase {
                Phase::Recovering | Phase::Offline | Phase::Closed => return,
                Phase::LoggingOut if st.e.reconnect_delay_ms.is_none() => {
                    // The final logout: the target closes every connection
                    // after its response, maybe some before it comes on
                    // the logout's: those end alone.
                    let logout_lane = st.e.logout_lane;
                    if let Some(k) = lane.filter(|&k| k != logout_lane) {
                        let conn = st.conns.get(k).and_then(Clone::clone);
                        drop(st);
                        if let Some(conn) = conn {
                            shut(&conn);
                        }
                        return;
                    }
                    if st.e.logout_response.is_none() {
                        pr_err!("host{}: connection failed: {}\n", self.host_no(), why);
                    }
                    st.e.phase = Phase::Offline;
                    self.events.notify_all();
                    let conns = st.conns.clone();
                    drop(st);
                    shut_all(&conns);
                    self.complete_all(HostByte::NoConnect);
                    return;
                }
                Phase::Running | Phase::LoggingOut => {}
            }
            let now = now_ms();
            st.e.phase = if st.replacement_timeout == 0 {
                Phase::Offline
            } else {
                Phase::Recovering
            };
            st.generation = st.generation.wrapping_add(1);
            st.failed_at_ms = now;
            let delay_ms = st.e.connection_lost();
            self.events.notify_all();
            let result = if st.e.phase == Phase::Offline {
                HostByte::TransportFailfast
            } else {
                HostByte::TransportDisrupted
            };
            (st.conns.clone(), st.generation, delay_ms, result)
        };
        pr_err!(
            "host{}: connection failed: {}; recovering (generation {}, relogin in {} ms)\n",
            self.host_no(),
            why,
            generation,
            delay_ms
        );
        shut_all(&conns);
        self.complete_all(result);
        self.board.post(self.host_no(), generation, cause, delay_ms);
    }

    pub(super) fn complete_all(&self, host: HostByte) {
        loop {
            let task = self.state.lock().e.tasks.take_any();
            let Some(task) = task else { break };
            let mut cmd = task.cmd;
            cmd.set_result(host, 0);
            cmd.complete();
        }
    }

    /// Brings the host's devices in line with the phase: blocked while
    /// recovering, transport-offline once the replacement timeout passed,
    /// running otherwise. Sleeps; never called from `queuecommand`.
    pub(super) fn sync_host(&self) {
        let mut hc = self.host_ctl.lock();
        loop {
            let want = match self.state.lock().e.phase {
                Phase::Running | Phase::LoggingOut => DeviceState::Running,
                Phase::Recovering => DeviceState::Blocked,
                Phase::Offline => DeviceState::Offline,
                Phase::Closed => return,
            };
            if want == hc.applied {
                return;
            }
            let from = hc.applied;
            let Some(h) = hc.handle.as_ref() else { return };
            let r = h.set(from, want);
            // The host is being removed (or not added yet): nothing to set.
            if r == Err(ENODEV) {
                return;
            }
            if let Err(e) = r {
                pr_warn!(
                    "host{}: setting the devices {:?} -> {:?}: {:?}\n",
                    self.host_no(),
                    from,
                    want,
                    e
                );
            }
            hc.applied = want;
        }
    }

    /// HANDOFF: a new logged-in connection for the session after a failure.
    /// `cfg` must name this session and answer its current generation.
    pub(crate) fn reconnect(self: &Arc<Self>, cfg: SessionConfig, sock: TcpSocket<Lane>) -> Result {
        let c = &self.cfg;
        if cfg.target_name() != c.target_name()
            || cfg.initiator_name() != c.initiator_name()
            || cfg.raw.isid != c.raw.isid
            || cfg.queue_depth != c.queue_depth
        {
            pr_err!(
                "host{}: HANDOFF refused: target, initiator, ISID or queue depth differ from the session's\n",
                self.host_no()
            );
            return Err(EINVAL);
        }
        let _one = self.handoff_lock.lock();
        let need_jobs = r2t_jobs(cfg.queue_depth as usize, &cfg.params);
        let bigger_jobs = {
            let st = self.state.lock();
            if st.generation != cfg.raw.generation
                || !matches!(st.e.phase, Phase::Recovering | Phase::Offline)
            {
                return Err(crate::recovery::estale());
            }
            st.e.lane(LEAD).map_or(0, |l| l.jobs.capacity()) < need_jobs
        };
        // Allocated outside the lock; the old queue is empty (cleared when
        // the connection failed).
        let mut new_jobs = if bigger_jobs {
            Some(job_store(need_jobs)?)
        } else {
            None
        };
        // A new connection comes with a receive side of its own.
        let conn = new_conn(sock, &cfg.params, cfg.queue_depth as usize)?;
        let lead = self.lane(LEAD).ok_or(ENODEV)?;
        let (old, generation, took_ms, age) = {
            let _held = lead.hold_tx();
            let mut st = self.state.lock();
            if st.generation != cfg.raw.generation
                || !matches!(st.e.phase, Phase::Recovering | Phase::Offline)
            {
                return Err(crate::recovery::estale());
            }
            let now = now_ms();
            // The other lanes come back by ADD_CONNECTION.
            let mut old = core::mem::take(&mut st.conns);
            st.conns[LEAD] = old[LEAD].take();
            let replaced = st.conns[LEAD].replace(conn.clone());
            let seq = Sequencer::new(cfg.cmd_sn, cfg.window);
            st.e.connection_replaced(lead_start(&cfg), seq, new_jobs.take(), now);
            st.tsih = cfg.raw.tsih;
            st.recoveries = st.recoveries.saturating_add(1);
            st.resumed_from_ms = Some(st.failed_at_ms);
            self.events.notify_all();
            (
                (old, replaced),
                st.generation,
                now - st.failed_at_ms,
                st.e.age,
            )
        };
        drop(old);
        self.board.withdraw(self.host_no());
        if let Err(e) = conn.sock.install_callbacks(lead.clone()) {
            self.fail_on(
                Some(LEAD),
                reason::SOCKET,
                format_args!("taking over the new socket failed: {e:?}"),
            );
            return Err(e);
        }
        Lane::kick_rx(lead.as_arc_borrow());
        self.sync_host();
        pr_info!(
            "host{}: connection re-established (generation {}, TSIH {}, ITT age {}) {} ms after the failure\n",
            self.host_no(),
            generation,
            cfg.raw.tsih,
            age,
            took_ms
        );
        Ok(())
    }
}

impl Session {
    /// ADD_CONNECTION: a further logged-in connection of the running session
    /// (same ISID and TSIH, its own CID) comes up on lane `cfg.lane`.
    pub(crate) fn add_connection(&self, cfg: SessionConfig, sock: TcpSocket<Lane>) -> Result {
        let idx = usize::from(cfg.lane);
        let refuse = |why: fmt::Arguments<'_>| {
            pr_err!("host{}: ADD_CONNECTION refused: {}\n", self.host_no(), why);
            EINVAL
        };
        if let Err(e) = self.cfg.same_session(&cfg) {
            return Err(refuse(format_args!("{e}")));
        }
        let _one = self.handoff_lock.lock();
        let Some(lane) = self.lane(idx).filter(|_| idx < self.nr_lanes) else {
            return Err(refuse(format_args!(
                "lane {} beyond the session's {}",
                idx, self.nr_lanes
            )));
        };
        let need_jobs = r2t_jobs(cfg.queue_depth as usize, &cfg.params);
        let bigger_jobs = {
            let st = self.state.lock();
            if st.generation != cfg.raw.generation || st.e.phase != Phase::Running {
                return Err(crate::recovery::estale());
            }
            if cfg.raw.tsih != st.tsih {
                return Err(refuse(format_args!(
                    "TSIH {} is not the session's {}",
                    cfg.raw.tsih, st.tsih
                )));
            }
            let mut current = self.cfg;
            current.params = st.e.params;
            if let Err(e) = cfg.same_session_keys(&current) {
                return Err(refuse(format_args!("{e}")));
            }
            st.e.lane(idx).map_or(0, |l| l.jobs.capacity()) < need_jobs
        };
        let mut new_jobs = if bigger_jobs {
            Some(job_store(need_jobs)?)
        } else {
            None
        };
        let conn = new_conn(sock, &cfg.params, cfg.queue_depth as usize)?;
        let start = LaneStart {
            cid: cfg.raw.cid,
            exp_stat_sn: cfg.exp_stat_sn,
            params: cfg.params,
        };
        let (old, up) = {
            let _held = lane.hold_tx();
            let mut st = self.state.lock();
            if st.generation != cfg.raw.generation {
                return Err(crate::recovery::estale());
            }
            match st.e.add_connection(idx, start, new_jobs.take(), now_ms()) {
                Ok(()) => {}
                Err(AddError::NotRunning) => return Err(crate::recovery::estale()),
                Err(AddError::LaneBusy) => return Err(EBUSY),
                Err(e) => return Err(refuse(format_args!("{e:?}"))),
            }
            // Its login's window counts like any other the target sends.
            st.e.window(cfg.window.exp_cmd_sn().get(), cfg.window.max_cmd_sn().get());
            st.log_quirks();
            let old = st.conns.get_mut(idx).and_then(|c| c.replace(conn.clone()));
            (old, st.e.lanes_up())
        };
        drop(old);
        if let Err(e) = conn.sock.install_callbacks(lane.clone()) {
            self.fail_on(
                Some(idx),
                reason::SOCKET,
                format_args!("taking over the new socket failed: {e:?}"),
            );
            return Err(e);
        }
        // A failure of another lane, or the close, since the update above
        // shut the lanes' sockets while this one was not ours yet (`shutdown`
        // skips it): shut it now. Later ones find it claimed.
        let passed = {
            let st = self.state.lock();
            st.generation != cfg.raw.generation || st.e.phase == Phase::Closed
        };
        if passed {
            shut(&conn);
            return Err(crate::recovery::estale());
        }
        Lane::kick_rx(lane.as_arc_borrow());
        pr_info!(
            "host{}: connection CID {} up on lane {} ({} of {})\n",
            self.host_no(),
            cfg.raw.cid,
            idx,
            up,
            self.nr_lanes
        );
        Ok(())
    }

    /// Lanes the session was created with.
    pub(crate) fn nr_lanes(&self) -> usize {
        self.nr_lanes
    }

    /// A LIST_CONNECTIONS entry per lane.
    pub(crate) fn conn_infos(&self) -> Result<KVec<ConnInfo>> {
        let mut out = KVec::with_capacity(self.nr_lanes, GFP_KERNEL)?;
        let lanes = self.lanes();
        // Sleeps (drains what a given-up socket received): before the lock.
        let closing: [bool; MAX_LANES] = core::array::from_fn(|k| {
            lanes[k]
                .1
                .as_ref()
                .is_some_and(|c| c.sock.awaits_peer_close())
        });
        let st = self.state.lock();
        for (k, (lane, conn)) in lanes.iter().enumerate().take(self.nr_lanes) {
            let mut i = ConnInfo::zeroed();
            i.lane = k as u16;
            if let Some(l) = st.e.lane(k) {
                i.cid = l.cid;
                i.state = if l.up {
                    uapi::conn_state::UP
                } else if closing[k] {
                    uapi::conn_state::CLOSING
                } else {
                    uapi::conn_state::ABSENT
                };
                i.header_digest = uapi::digest_code(l.params.header_digest);
                i.data_digest = uapi::digest_code(l.params.data_digest);
                i.exp_stat_sn = l.stat.exp_stat_sn().get();
                i.max_recv_data_segment_len = l.params.max_recv_data_segment_len;
                i.max_xmit_data_segment_len = l.params.max_xmit_data_segment_len;
            }
            i.in_flight =
                st.e.tasks
                    .iter()
                    .filter(|t| usize::from(t.lane) == k)
                    .count() as u32;
            if let Some(conn) = conn.as_ref().filter(|_| i.state == uapi::conn_state::UP) {
                i.local_port = conn.sock.local_port();
            }
            if let Some(lane) = lane {
                i.tx_handed_over = lane.txf.handed_over.load(Ordering::Relaxed);
                i.tx_stalled = lane.txf.stalled.load(Ordering::Relaxed);
            }
            // Within the capacity reserved above: does not allocate.
            out.push(i, GFP_ATOMIC)?;
        }
        Ok(out)
    }
}

/// Takes every connection of `conns` from its lane and shuts it.
pub(super) fn shut_all(conns: &[Option<Arc<SessionConn>>]) {
    conns.iter().flatten().for_each(|c| shut(c));
}

/// Takes `conn` from its lane (no more callbacks) and sends our FIN.
pub(super) fn shut(conn: &SessionConn) {
    conn.sock.restore_callbacks();
    conn.sock.shutdown();
}

/// How long a closed multi-connection session waits for the target to close
/// its end of every connection.
const PEER_CLOSE_WAIT_MS: u32 = 10_000;

/// The connections of a closed session, shut down by us.
pub(crate) struct ShutConns(pub(super) [Option<Arc<SessionConn>>; MAX_LANES]);

impl ShutConns {
    /// Waits (bounded) until the target has closed its end of each of two or
    /// more connections. A login with the session's ISID while the target
    /// still closes several of its connections is a session reinstatement
    /// racing those closes, which LIO does not survive: `iscsit_stop_session`
    /// walks the session's connection list with its lock dropped, and two
    /// connections unlinking themselves meanwhile send it through a freed
    /// entry. LIO unlinks a connection before it releases the socket, so once
    /// every FIN is in, none of them is left to close. One connection cannot
    /// hit it, and is not held up.
    pub(crate) fn linger(self, host_no: u32) {
        const STEP_MS: u32 = 20;
        let conns = || self.0.iter().flatten();
        if conns().count() < 2 {
            return;
        }
        let mut waited = 0;
        loop {
            let open = conns().filter(|c| c.sock.awaits_peer_close()).count();
            if open == 0 {
                break;
            }
            if waited >= PEER_CLOSE_WAIT_MS {
                pr_warn!(
                    "host{}: the target has not closed {} of its connections after {} ms; releasing them\n",
                    host_no,
                    open,
                    waited
                );
                return;
            }
            crate::sys::sleep_ms(STEP_MS);
            waited += STEP_MS;
        }
        if waited > 0 {
            pr_info!(
                "host{}: the target closed the session's connections within {} ms\n",
                host_no,
                waited
            );
        }
    }
}
