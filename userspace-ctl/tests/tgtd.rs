#[path = "tgtd/fixture.rs"]
mod fixture;
use fixture::*;
#[test]
fn scratch() {
    let t = Tgtd::start();
    let o = std::process::Command::new("iscsi-inq").arg(format!("iscsi://{}%{}@{}/{}/1", CHAP_USER, CHAP_SECRET, t.portal(), CHAP_IQN)).output().unwrap();
    println!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let o = std::process::Command::new("tgtadm").args(["-C", &(t.port & 0x7fff).to_string(), "--lld", "iscsi", "--op", "show", "--mode", "target"]).output().unwrap();
    println!("{}", String::from_utf8_lossy(&o.stdout));
}
