//! The service manager's variables are removed from pid's environment once read, so nothing
//! pid starts (the helpers of the PAM service that checks user-store passwords) inherits them.
//!
//! A test binary of its own: it changes the process environment, which no other test thread
//! may be reading meanwhile.
#![allow(clippy::unwrap_used)]

#[test]
fn listen_and_notify_variables_are_gone_once_read() {
    // LISTEN_PID names another process: nothing is taken from this one's descriptor 3.
    std::env::set_var("LISTEN_PID", "1");
    std::env::set_var("LISTEN_FDS", "1");
    std::env::set_var("LISTEN_FDNAMES", "pid.socket");
    std::env::set_var("NOTIFY_SOCKET", "@pi-test-notify");
    let mut env = pid::systemd::Environment::take();
    for name in [
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "NOTIFY_SOCKET",
    ] {
        assert_eq!(std::env::var_os(name), None, "{name} is still set");
    }
    let socket = std::path::Path::new("/run/pi/pid.sock");
    assert!(env.listener(socket).unwrap().is_none());
}
