#!/usr/bin/env python3
"""Walks the iSCSI PDUs of a libpcap capture (dumpcap -P) and checks the target's
command window against what the initiator sent.

Per TCP connection to the target port it follows both byte streams PDU by PDU
(BHS, AHS, header digest, data, padding, data digest: digests are taken as
negotiated from the last Login Response that carries the keys, in effect
after the login's final response), tracks the initiator's next CmdSN (a
non-immediate PDU consumes its CmdSN, an immediate one only carries it) and
flags every target PDU whose ExpCmdSN is beyond that next CmdSN (RFC 1982
serial comparison). It prints, for the first such PDU of each connection, the
PDUs leading up to it, the counts of immediate initiator PDUs by opcode, and a
summary per connection. Only headers are read; data are skipped.

    pdutrace.py [--port 3260] [--context 40] [--all] FILE.pcap

--all prints every PDU. Exit status 0 whether or not something was flagged:
this is a diagnostic, the cases decide what fails.
"""
import argparse
import struct
import sys

OPS = {
    0x00: "NOP-Out", 0x01: "SCSI-Cmd", 0x02: "TMF-Req", 0x03: "Login-Req",
    0x04: "Text-Req", 0x05: "Data-Out", 0x06: "Logout-Req", 0x10: "SNACK",
    0x20: "NOP-In", 0x21: "SCSI-Rsp", 0x22: "TMF-Rsp", 0x23: "Login-Rsp",
    0x24: "Text-Rsp", 0x25: "Data-In", 0x26: "Logout-Rsp", 0x31: "R2T",
    0x32: "Async", 0x3F: "Reject",
}
# Initiator opcodes whose bytes 24..28 are CmdSN.
CMDSN_OPS = {0x00, 0x01, 0x02, 0x03, 0x04, 0x06}
# Target opcodes whose bytes 28..36 are ExpCmdSN and MaxCmdSN.
WINDOW_OPS = {0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x31, 0x32, 0x3F}


def sn_gt(a, b):
    """RFC 1982 serial a > b on 32 bits."""
    return a != b and ((a - b) & 0xFFFFFFFF) < 0x80000000


def u32(b, off):
    return struct.unpack_from(">I", b, off)[0]


class Conn:
    """One TCP connection: two directions, shared login state."""

    def __init__(self, ident, first_time):
        self.ident = ident
        self.t0 = first_time
        self.hdigest = False
        self.ddigest = False
        self.pending_hd = self.pending_dd = None
        self.ffp = False
        self.next_cmdsn = None
        self.history = []      # recent PDU lines
        self.flagged = 0
        self.first_flag = None
        self.after = 0         # lines still to print after the first flag
        self.immediate = {}
        self.pdus = 0
        self.gap = None


class Stream:
    """One direction's byte stream, cut into PDUs."""

    def __init__(self, conn, to_target):
        self.conn = conn
        self.to_target = to_target
        self.next_seq = None
        self.buf = bytearray()   # header bytes being gathered
        self.need = 48           # bytes of header wanted
        self.skip = 0            # data bytes of the current PDU still to pass
        self.keep = 0            # of which kept (login text)
        self.text = bytearray()
        self.bhs = None
        self.dead = False


def pdu_line(conn, s, bhs, t):
    op = bhs[0] & 0x3F
    imm = (bhs[0] >> 6) & 1
    f = bhs[1] >> 7
    dsl = int.from_bytes(bhs[5:8], "big")
    itt = u32(bhs, 16)
    name = OPS.get(op, "op%02x" % op)
    d = "I>T" if s.to_target else "T>I"
    parts = ["%10.6f" % (t - conn.t0), d, "%-10s" % name]
    if s.to_target:
        parts.append("I=%d F=%d" % (imm, f))
        parts.append("ITT=%08x" % itt)
        if op in CMDSN_OPS:
            parts.append("CmdSN=%d" % u32(bhs, 24))
        if op == 0x05:
            parts.append("TTT=%08x DataSN=%d off=%d" % (u32(bhs, 20), u32(bhs, 36), u32(bhs, 40)))
        parts.append("ExpStatSN=%d" % u32(bhs, 28))
        if op == 0x01:
            rw = ("R" if bhs[1] & 0x40 else "") + ("W" if bhs[1] & 0x20 else "")
            parts.append("%s EDTL=%d CDB=%s" % (rw or "-", u32(bhs, 20), bhs[32:42].hex()))
        if op == 0x00:
            parts.append("TTT=%08x" % u32(bhs, 20))
        if op == 0x02:
            parts.append("func=%d RefITT=%08x RefCmdSN=%d" % (bhs[1] & 0x7F, u32(bhs, 20), u32(bhs, 32)))
    else:
        parts.append("F=%d" % f)
        parts.append("ITT=%08x" % itt)
        if op == 0x25:
            s_bit = bhs[1] & 1
            parts.append("S=%d DataSN=%d off=%d" % (s_bit, u32(bhs, 36), u32(bhs, 40)))
            if s_bit:
                parts.append("StatSN=%d" % u32(bhs, 24))
        elif op == 0x31:
            parts.append("TTT=%08x R2TSN=%d off=%d len=%d" % (u32(bhs, 20), u32(bhs, 36), u32(bhs, 40), u32(bhs, 44)))
        else:
            parts.append("StatSN=%d" % u32(bhs, 24))
        if op in WINDOW_OPS:
            parts.append("ExpCmdSN=%d MaxCmdSN=%d" % (u32(bhs, 28), u32(bhs, 32)))
        if op == 0x21:
            parts.append("resp=%d status=%d" % (bhs[2], bhs[3]))
        if op == 0x20:
            parts.append("TTT=%08x" % u32(bhs, 20))
    parts.append("DSL=%d" % dsl)
    return " ".join(parts)


def on_pdu(conn, s, bhs, text, t, args):
    op = bhs[0] & 0x3F
    conn.pdus += 1
    line = pdu_line(conn, s, bhs, t)
    note = ""
    if s.to_target:
        if op in CMDSN_OPS:
            sn = u32(bhs, 24)
            imm = (bhs[0] >> 6) & 1
            if imm:
                conn.immediate[OPS.get(op, op)] = conn.immediate.get(OPS.get(op, op), 0) + 1
                if conn.next_cmdsn is None or sn_gt(sn, conn.next_cmdsn):
                    conn.next_cmdsn = sn
            else:
                nxt = (sn + 1) & 0xFFFFFFFF
                if conn.next_cmdsn is None or sn_gt(nxt, conn.next_cmdsn):
                    conn.next_cmdsn = nxt
        note = "   [next CmdSN %s]" % conn.next_cmdsn
    else:
        if op in WINDOW_OPS and conn.next_cmdsn is not None and op != 0x23:
            exp = u32(bhs, 28)
            if sn_gt(exp, conn.next_cmdsn):
                conn.flagged += 1
                note = "   <== ExpCmdSN %d beyond next CmdSN %d" % (exp, conn.next_cmdsn)
                if conn.first_flag is None:
                    conn.first_flag = line
                    print("== %s: first target PDU with ExpCmdSN beyond the initiator's next CmdSN; "
                          "the %d PDUs before it:" % (conn.ident, len(conn.history)))
                    for h in conn.history:
                        print("   " + h)
                    print(" > " + line + note)
                    conn.after = 8
                    line = None
    if op == 0x23 and text:
        for kv in bytes(text).split(b"\0"):
            if kv.startswith(b"HeaderDigest="):
                conn.pending_hd = kv.endswith(b"=CRC32C")
            if kv.startswith(b"DataDigest="):
                conn.pending_dd = kv.endswith(b"=CRC32C")
        # T bit with NSG = 3: full feature phase starts after this PDU.
        if bhs[1] & 0x80 and bhs[1] & 0x03 == 3:
            conn.ffp = True
            conn.hdigest = bool(conn.pending_hd)
            conn.ddigest = bool(conn.pending_dd)
            line += "  [full feature: HeaderDigest %s DataDigest %s]" % (
                "CRC32C" if conn.hdigest else "None", "CRC32C" if conn.ddigest else "None")
    elif op == 0x23 and bhs[1] & 0x80 and bhs[1] & 0x03 == 3:
        conn.ffp = True
        conn.hdigest = bool(conn.pending_hd)
        conn.ddigest = bool(conn.pending_dd)
    if line is None:
        return
    if args.all:
        print(line + note)
    elif conn.after > 0:
        print("   " + line + note)
        conn.after -= 1
    conn.history.append(line + note)
    if len(conn.history) > args.context:
        del conn.history[0]


def feed(s, data, t, args):
    conn = s.conn
    i = 0
    n = len(data)
    while i < n and not s.dead:
        if s.skip:
            k = min(s.skip, n - i)
            if s.keep:
                kk = min(s.keep, k)
                s.text += data[i:i + kk]
                s.keep -= kk
            s.skip -= k
            i += k
            if s.skip == 0:
                on_pdu(conn, s, s.bhs, s.text, t, args)
                s.bhs = None
                s.text = bytearray()
            continue
        k = min(s.need - len(s.buf), n - i)
        s.buf += data[i:i + k]
        i += k
        if len(s.buf) < s.need:
            continue
        if s.need == 48:
            ahs = s.buf[4] * 4
            extra = ahs + (4 if conn.hdigest else 0)
            if extra:
                s.need = 48 + extra
                continue
        bhs = bytes(s.buf[:48])
        s.buf = bytearray()
        s.need = 48
        op = bhs[0] & 0x3F
        if op not in OPS:
            print("== %s: %s stream lost PDU sync (opcode 0x%02x); stops here"
                  % (conn.ident, "I>T" if s.to_target else "T>I", op))
            s.dead = True
            return
        dsl = int.from_bytes(bhs[5:8], "big")
        total = (dsl + 3) & ~3
        if dsl and conn.ddigest:
            total += 4
        if total == 0:
            on_pdu(conn, s, bhs, b"", t, args)
            continue
        s.bhs = bhs
        s.skip = total
        s.keep = dsl if op in (0x03, 0x23) else 0
        s.text = bytearray()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=3260)
    ap.add_argument("--context", type=int, default=40)
    ap.add_argument("--all", action="store_true")
    ap.add_argument("pcap")
    args = ap.parse_args()
    f = open(args.pcap, "rb")
    gh = f.read(24)
    magic = gh[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        sys.exit("pdutrace: %s is not a libpcap file (dumpcap -P)" % args.pcap)
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(e + "I", gh[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20}.get(linktype)
    if l2 is None:
        sys.exit("pdutrace: link type %d not handled" % linktype)
    conns = {}
    streams = {}
    order = []
    frames = 0
    while True:
        rh = f.read(16)
        if len(rh) < 16:
            break
        sec, frac, incl, orig = struct.unpack(e + "IIII", rh)
        pkt = f.read(incl)
        frames += 1
        t = sec + frac / (1e9 if nano else 1e6)
        if incl < orig:
            print("== frame %d truncated (%d of %d bytes): capture with snaplen 0" % (frames, incl, orig))
        if linktype == 1:
            et = struct.unpack_from(">H", pkt, 12)[0]
        elif linktype == 113:
            et = struct.unpack_from(">H", pkt, 14)[0]
        else:
            et = struct.unpack_from(">H", pkt, 0)[0]
        p = pkt[l2:]
        if et == 0x0800:
            ihl = (p[0] & 0xF) * 4
            if p[9] != 6:
                continue
            tot = struct.unpack_from(">H", p, 2)[0]
            src, dst = p[12:16], p[16:20]
            tcp = p[ihl:tot]
        elif et == 0x86DD:
            if p[6] != 6:
                continue
            plen = struct.unpack_from(">H", p, 4)[0]
            src, dst = p[8:24], p[24:40]
            tcp = p[40:40 + plen]
        else:
            continue
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        payload = tcp[doff:]
        if args.port not in (sport, dport):
            continue
        to_target = dport == args.port
        ini = (src, sport) if to_target else (dst, dport)
        key = (ini, to_target)
        cid = ini
        if flags & 0x02:  # SYN: a new connection
            if to_target:
                ident = "conn %d (initiator port %d)" % (len(order) + 1, ini[1])
                conns[cid] = Conn(ident, t)
                order.append(conns[cid])
                for d in (True, False):
                    streams.pop((ini, d), None)
            if cid in conns:
                st = Stream(conns[cid], to_target)
                st.next_seq = (seq + 1) & 0xFFFFFFFF
                streams[key] = st
            continue
        s = streams.get(key)
        if s is None or not payload or s.dead:
            continue
        rel = (seq - s.next_seq) & 0xFFFFFFFF
        if rel >= 0x80000000:  # starts before what we have: retransmission
            over = (s.next_seq - seq) & 0xFFFFFFFF
            if over >= len(payload):
                continue
            payload = payload[over:]
            seq = s.next_seq
        elif rel:
            print("== %s: %d bytes missing from the %s stream at frame %d (capture drop); stops here"
                  % (s.conn.ident, rel, "I>T" if to_target else "T>I", frames))
            s.conn.gap = frames
            s.dead = True
            continue
        s.next_seq = (seq + len(payload)) & 0xFFFFFFFF
        feed(s, payload, t, args)
    print("== %d frames" % frames)
    for c in order:
        print("== %s: %d PDUs, last next CmdSN %s, digests %s/%s, %d target PDUs with ExpCmdSN beyond it, "
              "immediate initiator PDUs %s%s"
              % (c.ident, c.pdus, c.next_cmdsn, "CRC32C" if c.hdigest else "None",
                 "CRC32C" if c.ddigest else "None", c.flagged, c.immediate or "{}",
                 ", stream gap at frame %d" % c.gap if c.gap else ""))


if __name__ == "__main__":
    main()
