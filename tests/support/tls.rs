//! Certificates for the TLS tests, made with the `openssl` command: a throwaway CA and a server
//! certificate it signs for `localhost` and 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;

/// PEM files of a test PKI.
pub struct TestPki {
    /// The CA certificate clients trust.
    pub ca: PathBuf,
    /// The server's certificate (signed by the CA).
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("openssl").args(args).current_dir(dir).output().context("run openssl (Debian package openssl)")?;
    anyhow::ensure!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// Makes a CA and a server certificate in `dir`.
pub fn make_pki(dir: &Path) -> anyhow::Result<TestPki> {
    std::fs::create_dir_all(dir)?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    openssl(
        dir,
        &[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=framework test CA"]].concat(),
    )?;
    openssl(dir, &[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat())?;
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n")?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    )?;
    Ok(TestPki { ca: dir.join("ca.pem"), cert: dir.join("server.pem"), key: dir.join("server.key") })
}

/// A client that trusts only the CA in `ca`.
pub fn client_trusting(ca: &Path) -> anyhow::Result<reqwest::Client> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let pem = std::fs::read(ca).with_context(|| format!("read {}", ca.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)?;
    Ok(reqwest::Client::builder().tls_certs_only(certs).build()?)
}
