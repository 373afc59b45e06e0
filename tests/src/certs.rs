//! Certificates for the private TLS servers of the tests (slapd, privacyIDEA): a CA made by the
//! test, a server certificate it signs, and an unrelated CA for "the client trusts the wrong CA",
//! all made with `openssl` in the server's temporary directory. Nothing is trusted system-wide.

use crate::process;
use std::fs;
use std::path::Path;
use std::process::Command;

/// `openssl ARGS` in `root`; `args` is split on whitespace (no argument here has a space).
fn openssl(root: &Path, args: &str) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(root).args(args.split_whitespace());
    let out = process::run(cmd, b"");
    assert!(
        out.success(),
        "openssl {args} failed (apt-get install openssl)\n{}",
        out.describe()
    );
}

/// `ca.pem` (a CA), `server.pem`/`server.key` (for 127.0.0.1 and localhost, signed by it) and
/// `other-ca.pem` (an unrelated CA), with P-256 keys: quick to make, and GnuTLS (slapd), OpenSSL
/// (Python, for privacyIDEA) and rustls (pid) all speak them.
pub fn make_certificates(root: &Path) {
    const P256: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "other-ca"] {
        openssl(
            root,
            &format!(
                "req -x509 {P256} -keyout {ca}.key -out {ca}.pem -days 2 -subj /CN=pi-test-{ca} \
                 -addext basicConstraints=critical,CA:TRUE \
                 -addext keyUsage=critical,keyCertSign,cRLSign"
            ),
        );
    }
    openssl(
        root,
        &format!("req {P256} -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
    );
    fs::write(
        root.join("server-ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n\
         basicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\n\
         extendedKeyUsage=serverAuth\n",
    )
    .expect("write the certificate extensions");
    openssl(
        root,
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem \
         -days 2 -extfile server-ext.cnf",
    );
}
