#!/usr/bin/env python3
"""Test-only stand-in for `iscsictl login` until it lands: speaks just enough iSCSI
login (no authentication) to an in-guest LIO target, then hands the socket to
iscsi_rs.ko with the ADD_SESSION ioctl and prints the SCSI host number.
Also: `list` (LIST ioctl, one line per session) and `remove HOST` (REMOVE_SESSION).
Layouts and numbers mirror src/proto/uapi.rs (checked there by unit tests).

  pylogin.py login -t IQN [-p 127.0.0.1:3260] [--initial-r2t Yes|No]
             [--immediate-data Yes|No] [--digest None|CRC32C] [--queue-depth N]
  pylogin.py list
  pylogin.py remove HOST [--force]
"""
import argparse
import fcntl
import os
import socket
import struct
import sys

VERSION = 1
MAGIC = 0xE3
HANDOFF_FMT = "<IIIiIHH6sBBIIIIIIIIIIHHHHBBBBBBHII224s224s64s64s"
REMOVE_FMT = "<IIII16s"
LIST_FMT = "<IIIIQI20s"
INFO_FMT = "<IBBBBHH6s2sIIIIIIIIIBB2sI224s224s64s64s"
assert struct.calcsize(HANDOFF_FMT) == 672
assert struct.calcsize(REMOVE_FMT) == 32
assert struct.calcsize(LIST_FMT) == 48
assert struct.calcsize(INFO_FMT) == 640


def ioc(direction, nr, size):
    return (direction << 30) | (size << 16) | (MAGIC << 8) | nr


ADD_SESSION = ioc(3, 1, 672)
REMOVE_SESSION = ioc(1, 2, 32)
LIST = ioc(3, 3, 48)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("login: target closed the connection")
        buf += chunk
    return buf


def recv_pdu(s):
    bhs = recv_exact(s, 48)
    ahs = bhs[4] * 4
    dlen = int.from_bytes(bhs[5:8], "big")
    rest = recv_exact(s, ahs + dlen + ((4 - dlen % 4) % 4))
    return bhs, rest[ahs:ahs + dlen]


def keys(data):
    out = {}
    for kv in data.split(b"\0"):
        if b"=" in kv:
            k, v = kv.split(b"=", 1)
            out[k.decode()] = v.decode()
    return out


def login(a):
    host, port = a.portal.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    isid = bytes([0x80, 0x12, 0x34, 0x56, 0x78, 0x9A])
    itt, cid, cmd_sn = 0x1000, 0, 1
    exp_stat_sn = 0
    initiator = "iqn.2026-11.dev.iscsi-rs:pylogin"
    want = {
        "HeaderDigest": a.digest, "DataDigest": a.digest, "MaxConnections": "1",
        "InitialR2T": a.initial_r2t, "ImmediateData": a.immediate_data,
        "MaxRecvDataSegmentLength": str(a.mrdsl), "MaxBurstLength": "262144",
        "FirstBurstLength": "65536", "DefaultTime2Wait": "2", "DefaultTime2Retain": "0",
        "MaxOutstandingR2T": "1", "DataPDUInOrder": "Yes", "DataSequenceInOrder": "Yes",
        "ErrorRecoveryLevel": "0",
    }
    stages = [
        (0, 1, {"InitiatorName": initiator, "TargetName": a.target,
                "SessionType": "Normal", "AuthMethod": "None"}),
        (1, 3, want),
    ]
    got, tsih, stat_sn = {}, 0, 0
    exp_cmd_sn = max_cmd_sn = 0
    stage = 0
    while True:
        csg, nsg, kv = stages[stage]
        data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in kv.items())
        bhs = bytearray(48)
        bhs[0] = 0x40 | 0x03
        bhs[1] = 0x80 | (csg << 2) | nsg
        bhs[5:8] = len(data).to_bytes(3, "big")
        bhs[8:14] = isid
        bhs[14:16] = tsih.to_bytes(2, "big")
        bhs[16:20] = itt.to_bytes(4, "big")
        bhs[20:22] = cid.to_bytes(2, "big")
        bhs[24:28] = cmd_sn.to_bytes(4, "big")
        bhs[28:32] = exp_stat_sn.to_bytes(4, "big")
        s.sendall(bytes(bhs) + data + b"\0" * ((4 - len(data) % 4) % 4))
        rbhs, rdata = recv_pdu(s)
        if rbhs[0] & 0x3F != 0x23:
            raise SystemExit(f"login: unexpected opcode {rbhs[0]:#x}")
        if rbhs[36] != 0:
            raise SystemExit(f"login: status class {rbhs[36]} detail {rbhs[37]}")
        got.update(keys(rdata))
        tsih = int.from_bytes(rbhs[14:16], "big")
        stat_sn = int.from_bytes(rbhs[24:28], "big")
        exp_stat_sn = (stat_sn + 1) & 0xFFFFFFFF
        exp_cmd_sn = int.from_bytes(rbhs[28:32], "big")
        max_cmd_sn = int.from_bytes(rbhs[32:36], "big")
        transit = rbhs[1] & 0x80
        rnsg = rbhs[1] & 3
        if transit and rnsg == 3:
            break
        if transit:
            stage = 1

    def yes(k):
        return 1 if got.get(k, want[k]) == "Yes" else 0

    def num(k, default):
        return int(got.get(k, default))

    hd = 1 if got.get("HeaderDigest", "None") == "CRC32C" else 0
    dd = 1 if got.get("DataDigest", "None") == "CRC32C" else 0
    args = dict(
        version=VERSION, size=672, flags=0, fd=s.fileno(), host_no=0, cid=cid, tsih=tsih,
        isid=isid, hd=hd, dd=dd, stat_sn=stat_sn, exp_stat_sn=exp_stat_sn,
        exp_cmd_sn=exp_cmd_sn, max_cmd_sn=max_cmd_sn, cmd_sn=exp_cmd_sn, itt_base=1 << 16,
        mrdsl=a.mrdsl, mxdsl=num("MaxRecvDataSegmentLength", 8192),
        fb=num("FirstBurstLength", 65536), mb=num("MaxBurstLength", 262144),
        r2t=num("MaxOutstandingR2T", 1), conns=num("MaxConnections", 1),
        t2w=num("DefaultTime2Wait", 2), t2r=num("DefaultTime2Retain", 20),
        ir2t=yes("InitialR2T"), imm=yes("ImmediateData"),
        tpgt=num("TargetPortalGroupTag", 1), qd=a.queue_depth,
    )
    buf = bytearray(struct.pack(
        HANDOFF_FMT, args["version"], args["size"], 0, args["fd"], 0, args["cid"],
        args["tsih"], args["isid"], args["hd"], args["dd"], args["stat_sn"],
        args["exp_stat_sn"], args["exp_cmd_sn"], args["max_cmd_sn"], args["cmd_sn"],
        args["itt_base"], args["mrdsl"], args["mxdsl"], args["fb"], args["mb"], args["r2t"],
        args["conns"], args["t2w"], args["t2r"], args["ir2t"], args["imm"], 1, 1, 0, 0,
        args["tpgt"], args["qd"], 0, a.target.encode(), initiator.encode(),
        a.portal.encode(), b""))
    print(f"# negotiated: {got}", file=sys.stderr)
    dev = os.open("/dev/iscsi_rs", os.O_RDWR)
    host_no = fcntl.ioctl(dev, ADD_SESSION, buf, True)
    os.close(dev)
    s.close()  # the module holds its own reference
    out = struct.unpack(HANDOFF_FMT, bytes(buf))
    assert out[4] == host_no, (out[4], host_no)
    print(host_no)


def list_sessions(_a):
    cap = 16
    entries = bytearray(640 * cap)
    import ctypes
    addr = ctypes.addressof((ctypes.c_char * len(entries)).from_buffer(entries))
    arg = bytearray(struct.pack(LIST_FMT, VERSION, 48, cap, 0, addr, 640, b""))
    dev = os.open("/dev/iscsi_rs", os.O_RDWR)
    n = fcntl.ioctl(dev, LIST, arg, True)
    os.close(dev)
    count = struct.unpack(LIST_FMT, bytes(arg))[3]
    assert count == n, (count, n)
    for i in range(min(n, cap)):
        f = struct.unpack(INFO_FMT, bytes(entries[i * 640:(i + 1) * 640]))
        name = f[22].split(b"\0")[0].decode()
        portal = f[24].split(b"\0")[0].decode()
        print(f"host{f[0]} state={f[1]} tsih={f[5]} target={name} portal={portal} "
              f"cmdsn={f[9]} expcmdsn={f[10]} maxcmdsn={f[11]} expstatsn={f[12]} "
              f"depth={f[13]} inflight={f[21]}")


def remove(a):
    arg = struct.pack(REMOVE_FMT, VERSION, 32, a.host, 1 if a.force else 0, b"")
    dev = os.open("/dev/iscsi_rs", os.O_RDWR)
    fcntl.ioctl(dev, REMOVE_SESSION, arg)
    os.close(dev)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="verb", required=True)
    lg = sub.add_parser("login")
    lg.add_argument("-t", "--target", required=True)
    lg.add_argument("-p", "--portal", default="127.0.0.1:3260")
    lg.add_argument("--initial-r2t", default="Yes")
    lg.add_argument("--immediate-data", default="Yes")
    lg.add_argument("--digest", default="None")
    lg.add_argument("--mrdsl", type=int, default=262144)
    lg.add_argument("--queue-depth", type=int, default=128)
    sub.add_parser("list")
    rm = sub.add_parser("remove")
    rm.add_argument("host", type=int)
    rm.add_argument("--force", action="store_true")
    a = p.parse_args()
    {"login": login, "list": list_sessions, "remove": remove}[a.verb](a)


if __name__ == "__main__":
    main()
