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

/// A TLS front for a plain-HTTP server on loopback (as an HTTPS-serving Mesos master looks to
/// its clients): accepts TLS with `pki`'s server certificate and relays the bytes to
/// `upstream`. Stops when dropped.
pub struct TlsProxy {
    /// Its port on 127.0.0.1.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Starts relaying to `upstream` (`host:port`).
    pub async fn start(pki: &TestPki, upstream: String) -> anyhow::Result<Self> {
        use rustls::pki_types::pem::PemObject as _;
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let certs = rustls::pki_types::CertificateDer::pem_file_iter(&pki.cert)?.collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(&pki.key)?;
        let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                    let Ok(mut plain) = tokio::net::TcpStream::connect(&upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(Self { port, task })
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
