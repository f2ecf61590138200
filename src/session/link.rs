//! Losing and replacing the connection: `fail` (ERL 0 recovery starts),
//! handing commands back, blocking the host, and the HANDOFF of a new socket.

use super::*;

impl Session {
    /// Fails the connection: logs why, shuts the socket down, hands every
    /// in-flight command back for retry and asks the daemon for a relogin (the
    /// watchdog blocks the host). `cause` is one of `uapi::reason`. Idempotent
    /// per connection; a failure while the session is being logged out for
    /// good only ends it.
    pub(crate) fn fail(&self, cause: u32, why: fmt::Arguments<'_>) {
        let (conn, generation, delay_ms, result) = {
            let mut st = self.state.lock();
            match st.e.phase {
                Phase::Recovering | Phase::Offline | Phase::Closed => return,
                Phase::LoggingOut if st.e.reconnect_delay_ms.is_none() => {
                    // The final logout: the target closes after its response.
                    if st.e.logout_response.is_none() {
                        pr_err!("host{}: connection failed: {}\n", self.host_no(), why);
                    }
                    st.e.phase = Phase::Offline;
                    self.events.notify_all();
                    let conn = st.conn.clone();
                    drop(st);
                    conn.sock.restore_callbacks();
                    conn.sock.shutdown();
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
            (st.conn.clone(), st.generation, delay_ms, result)
        };
        pr_err!(
            "host{}: connection failed: {}; recovering (generation {}, relogin in {} ms)\n",
            self.host_no(),
            why,
            generation,
            delay_ms
        );
        conn.sock.restore_callbacks();
        conn.sock.shutdown();
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
    pub(crate) fn reconnect(
        self: &Arc<Self>,
        cfg: SessionConfig,
        sock: TcpSocket<Session>,
    ) -> Result {
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
        let (old, generation, took_ms, age) = {
            let _held = self.hold_tx();
            let mut st = self.state.lock();
            if st.generation != cfg.raw.generation
                || !matches!(st.e.phase, Phase::Recovering | Phase::Offline)
            {
                return Err(crate::recovery::estale());
            }
            let now = now_ms();
            let old = core::mem::replace(&mut st.conn, conn.clone());
            let seq = Sequencer::new(cfg.cmd_sn, cfg.window);
            st.e.connection_replaced(lead_start(&cfg), seq, new_jobs.take(), now);
            st.tsih = cfg.raw.tsih;
            st.recoveries = st.recoveries.saturating_add(1);
            st.resumed_from_ms = Some(st.failed_at_ms);
            self.events.notify_all();
            (old, st.generation, now - st.failed_at_ms, st.e.age)
        };
        drop(old);
        self.board.withdraw(self.host_no());
        if let Err(e) = conn.sock.install_callbacks(self.clone()) {
            self.fail(
                reason::SOCKET,
                format_args!("taking over the new socket failed: {e:?}"),
            );
            return Err(e);
        }
        Self::kick_rx(self.as_arc_borrow());
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
