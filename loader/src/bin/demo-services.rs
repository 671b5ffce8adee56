//! demo-services: a small, deliberately weak attack surface on loopback, for
//! the end-to-end tests (`loader/tests/e2e_nmap.rs`, `loader/tests/e2e_pd.rs`)
//! and the demo (`scripts/demo-scan.sh`). Everything listens on 127.0.0.1
//! (and on each `--extra-ip`, also in 127.0.0.0/8) only and runs as children
//! of this process; nothing is installed or left behind.
//!
//! | service | port | risk |
//! | --- | --- | --- |
//! | nginx (own prefix and config in `--dir`), self-signed certificate, TLS 1.0 and 1.2, no security headers, an admin login page at `/admin/` | `--tls-port` (18443) | RB2 (with `templates/nuclei`), RB3, RB4 self_signed, RB5 |
//! | SSH-like listener: `SSH-2.0-OpenSSH_9.2p1` banner | `--ssh-port` (2222) | RB1 |
//! | a listener that accepts and never answers | `--silent-port` (9200) | RB6 |
//! | dnsmasq: `A` (every address) and SPF `~all`, DMARC `p=none`, DKIM for `mail` of `--domain` | `--dns-port` (15353, UDP and TCP, 127.0.0.1) | RB7 |
//!
//! It writes `assets.toml` (an `xray-loader scan` configuration for these
//! services with `--toolchain`, nmap by default) and the project's nuclei
//! templates (`nuclei-templates/`) into `--dir`, then prints one line
//! `ready {json}` on stdout and takes commands on stdin, one per line,
//! answering each with `ok <command>` (or `error <message>`):
//!
//! - `remediate`: nginx restarted with `X-Frame-Options` and
//!   `X-Content-Type-Options` (CSP and HSTS still missing) and without the
//!   admin page, the SSH listener stopped, SPF changed to `-all`;
//! - `stop nginx|ssh|silent|dns`: stops one service;
//! - `quit` (or end of input, SIGTERM, SIGINT): stops everything and exits.
//!
//! Needs the Debian packages nginx, dnsmasq-base and openssl
//! (scripts/setup.sh); a missing one is an error, never a silent skip.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::{JoinHandle, JoinSet};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
pub const SSH_BANNER: &[u8] = b"SSH-2.0-OpenSSH_9.2p1\r\n";
pub const TENANT: &str = "0a7c0000-0000-4000-8000-00000000d001";
pub const IP_ASSET: &str = "0a7c0000-0000-4000-8000-0000000000a1";
pub const DOMAIN_ASSET: &str = "0a7c0000-0000-4000-8000-0000000000a2";

#[derive(Debug, Parser)]
#[command(
    name = "demo-services",
    about = "Weak demo services on loopback for the Watchtower demo and end-to-end tests."
)]
struct Args {
    /// Working directory (certificates, configurations, logs, assets.toml). Default: a new temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The test zone served by dnsmasq; resolves to 127.0.0.1.
    #[arg(long, default_value = "watchtower.test")]
    domain: String,
    #[arg(long, default_value_t = 18443)]
    tls_port: u16,
    #[arg(long, default_value_t = 2222)]
    ssh_port: u16,
    #[arg(long, default_value_t = 9200)]
    silent_port: u16,
    #[arg(long, default_value_t = 15353)]
    dns_port: u16,
    /// Another loopback address (127.0.0.0/8) the services also listen on and
    /// the domain also resolves to; repeat for more.
    #[arg(long = "extra-ip")]
    extra_ips: Vec<Ipv4Addr>,
    /// The `toolchain` of the written assets.toml: nmap, projectdiscovery or auto.
    #[arg(long, default_value = "nmap")]
    toolchain: String,
}

/// A Debian program, looked up on PATH and in the sbin directories root has.
fn program(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("{name} is not installed (Debian package {package}; scripts/setup.sh installs it)"))
}

/// Fails at once, with the port named, when something already listens there.
fn check_free(port: u16, udp: bool) -> Result<()> {
    let addr = SocketAddr::from((LOOPBACK, port));
    std::net::TcpListener::bind(addr)
        .with_context(|| format!("127.0.0.1:{port}/tcp is in use; stop whatever listens there"))?;
    if udp {
        std::net::UdpSocket::bind(addr)
            .with_context(|| format!("127.0.0.1:{port}/udp is in use; stop whatever listens there"))?;
    }
    Ok(())
}

/// A child that dies with us, even if we are killed with SIGKILL.
fn child_command(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.stdin(Stdio::null()).kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        c.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    c
}

fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    let p = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .with_context(|| format!("cannot open {}", p.display()))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

/// Waits until `port` accepts connections, or the child dies, or 10 s pass.
async fn wait_listening(child: &mut Child, ip: Ipv4Addr, port: u16, what: &str, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{what} exited at start with {status}: {}", tail(log));
        }
        if tokio::net::TcpStream::connect((ip, port)).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} does not listen on {ip}:{port} after 10 s: {}", tail(log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stop_child(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill().await;
    }
}

struct Nginx {
    bin: PathBuf,
    dir: PathBuf,
    ips: Vec<Ipv4Addr>,
    port: u16,
    child: Option<Child>,
}

impl Nginx {
    fn config(&self, hardened: bool) -> String {
        let d = self.dir.display();
        let headers = if hardened {
            "    add_header X-Frame-Options DENY always;\n    add_header X-Content-Type-Options nosniff always;\n"
        } else {
            ""
        };
        // The admin panel (RB2 through templates/nuclei) is taken down by `remediate`.
        let admin = if hardened {
            ""
        } else {
            "    location /admin/ {\n      default_type text/html;\n      return 200 \"<html><head><title>Watchtower Admin Login</title></head><body><form data-version=\\\"2.4.1\\\" method=post><input name=user><input name=password type=password></form></body></html>\\n\";\n    }\n"
        };
        let listen: String = self
            .ips
            .iter()
            .map(|ip| format!("    listen {ip}:{} ssl;\n", self.port))
            .collect();
        // master_process off: one process, so killing it leaves no workers behind.
        // SECLEVEL=0: OpenSSL 3 refuses TLS 1.0 otherwise.
        format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  server_tokens on;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  server {{
{listen}    server_name _;
    ssl_certificate {d}/cert.pem;
    ssl_certificate_key {d}/key.pem;
    ssl_protocols TLSv1 TLSv1.2;
    ssl_ciphers DEFAULT:@SECLEVEL=0;
{headers}{admin}    location / {{
      default_type text/html;
      return 200 "<html><head><title>Watchtower demo</title></head><body>demo</body></html>\n";
    }}
  }}
}}
"#
        )
    }

    async fn start(&mut self, hardened: bool) -> Result<()> {
        stop_child(&mut self.child).await;
        std::fs::create_dir_all(self.dir.join("tmp"))?;
        let conf = self.dir.join("nginx.conf");
        std::fs::write(&conf, self.config(hardened))?;
        let log = self.dir.join("nginx-error.log");
        let mut cmd = child_command(&self.bin);
        cmd.arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&log)
            .stdout(log_file(&self.dir, "nginx.out")?)
            .stderr(log_file(&self.dir, "nginx.out")?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        for ip in &self.ips {
            wait_listening(&mut child, *ip, self.port, "nginx", &self.dir.join("nginx.out")).await?;
        }
        self.child = Some(child);
        Ok(())
    }
}

struct Dnsmasq {
    bin: PathBuf,
    dir: PathBuf,
    ips: Vec<Ipv4Addr>,
    port: u16,
    domain: String,
    child: Option<Child>,
}

impl Dnsmasq {
    fn args(&self, spf_all: &str) -> Vec<String> {
        let d = &self.domain;
        let mut a: Vec<String> = vec![
            "--keep-in-foreground".into(),
            "--conf-file=/dev/null".into(),
            // Never forwards: no upstream server, no /etc/resolv.conf, no /etc/hosts.
            "--no-resolv".into(),
            "--no-hosts".into(),
            "--no-poll".into(),
            format!("--local=/{d}/"),
            "--listen-address=127.0.0.1".into(),
            "--bind-interfaces".into(),
            format!("--port={}", self.port),
            format!("--pid-file={}", self.dir.join("dnsmasq.pid").display()),
            "--log-facility=-".into(),

            format!("--txt-record={d},v=spf1 ip4:127.0.0.1 {spf_all}"),
            format!("--txt-record=_dmarc.{d},v=DMARC1; p=none; rua=mailto:dmarc@{d}"),
            format!("--txt-record=mail._domainkey.{d},v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQC"),
        ];
        // One record per address: a host-record takes one IPv4 address.
        a.extend(self.ips.iter().map(|ip| format!("--host-record={d},{ip}")));
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            a.push("--user=root".into());
        }
        a
    }

    async fn start(&mut self, spf_all: &str) -> Result<()> {
        stop_child(&mut self.child).await;
        let log = self.dir.join("dnsmasq.log");
        let mut cmd = child_command(&self.bin);
        cmd.args(self.args(spf_all))
            .stdout(log_file(&self.dir, "dnsmasq.log")?)
            .stderr(log_file(&self.dir, "dnsmasq.log")?);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", self.bin.display()))?;
        wait_listening(&mut child, LOOPBACK, self.port, "dnsmasq", &log).await?;
        self.child = Some(child);
        Ok(())
    }
}

/// Accepts connections on 127.0.0.1:`port`; each gets `greeting` (maybe
/// nothing) and is then held open, read and ignored until the peer leaves.
/// Aborting the task closes the listener and every connection.
async fn listener(ips: &[Ipv4Addr], port: u16, greeting: &'static [u8]) -> Result<JoinHandle<()>> {
    let mut tasks = JoinSet::new();
    for ip in ips {
        let l = TcpListener::bind((*ip, port))
            .await
            .with_context(|| format!("{ip}:{port} is in use; stop whatever listens there"))?;
        tasks.spawn(serve(l, greeting));
    }
    // Aborting this task drops the set, which aborts every listener.
    Ok(tokio::spawn(async move {
        while tasks.join_next().await.is_some() {}
    }))
}

async fn serve(l: TcpListener, greeting: &'static [u8]) {
    {
        let mut conns = JoinSet::new();
        loop {
            tokio::select! {
                accepted = l.accept() => {
                    let Ok((mut s, _)) = accepted else { continue };
                    conns.spawn(async move {
                        if !greeting.is_empty() && s.write_all(greeting).await.is_err() {
                            return;
                        }
                        let mut buf = [0u8; 1024];
                        let _ = tokio::time::timeout(Duration::from_secs(300), async {
                            while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                        })
                        .await;
                    });
                }
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
    }
}

fn assets_toml(a: &Args, dir: &Path, nmap: Option<&Path>) -> String {
    let nmap = nmap
        .map(|p| format!("nmap = \"{}\"\n", p.display()))
        .unwrap_or_default();
    format!(
        r#"# Written by demo-services: the demo services on {ips} and the zone {domain}
# on the local dnsmasq.
tenant_id = "{TENANT}"
toolchain = "{toolchain}"
scan_kind = "on_demand"
ports = [{ssh}, {silent}, {tls}]
dns_resolver = "127.0.0.1:{dns}"
dkim_selectors = ["mail"]
lock_dir = "{dir}"

[limits]
rate = 300
parallel_endpoints = 2

[timeouts]
nmap = 300
naabu = 120
httpx = 120
tlsx = 180
nuclei = 300
dns = 5
scan = 1800

[tools]
{nmap}# The project's own templates (templates/nuclei), nothing downloaded.
nuclei_templates = ["{dir}/nuclei-templates"]
[tools.extra_args]
# Fewer version probes: a port that never answers costs about 20 s instead of 3 minutes.
nmap = ["--version-intensity", "1"]

[[assets]]
id = "{IP_ASSET}"
type = "ip"
value = "127.0.0.1"
tags = ["demo"]

[[assets]]
id = "{DOMAIN_ASSET}"
type = "domain"
value = "{domain}"
tags = ["demo"]
"#,
        domain = a.domain,
        ssh = a.ssh_port,
        silent = a.silent_port,
        tls = a.tls_port,
        dns = a.dns_port,
        dir = dir.display(),
        toolchain = a.toolchain,
        ips = a.ips().iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(", "),
    )
}

/// The project's nuclei templates (templates/nuclei), shipped inside the binary.
const NUCLEI_TEMPLATES: [(&str, &str); 2] = [
    (
        "watchtower-admin-panel.yaml",
        include_str!("../../../templates/nuclei/watchtower-admin-panel.yaml"),
    ),
    (
        "directory-listing.yaml",
        include_str!("../../../templates/nuclei/directory-listing.yaml"),
    ),
];

impl Args {
    /// 127.0.0.1 and the extra addresses.
    fn ips(&self) -> Vec<Ipv4Addr> {
        let mut ips = vec![LOOPBACK];
        for ip in &self.extra_ips {
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        ips
    }
}

struct Services {
    nginx: Nginx,
    dns: Dnsmasq,
    ssh: Option<JoinHandle<()>>,
    silent: Option<JoinHandle<()>>,
}

impl Services {
    async fn stop_all(&mut self) {
        stop_child(&mut self.nginx.child).await;
        stop_child(&mut self.dns.child).await;
        for t in [self.ssh.take(), self.silent.take()].into_iter().flatten() {
            t.abort();
        }
    }

    async fn command(&mut self, cmd: &str) -> Result<bool> {
        let words: Vec<&str> = cmd.split_whitespace().collect();
        match words.as_slice() {
            [] => {}
            ["quit"] => return Ok(false),
            ["remediate"] => {
                self.nginx.start(true).await?;
                if let Some(t) = self.ssh.take() {
                    t.abort();
                }
                self.dns.start("-all").await?;
            }
            ["stop", "nginx"] => stop_child(&mut self.nginx.child).await,
            ["stop", "dns"] => stop_child(&mut self.dns.child).await,
            ["stop", "ssh"] => {
                if let Some(t) = self.ssh.take() {
                    t.abort();
                }
            }
            ["stop", "silent"] => {
                if let Some(t) = self.silent.take() {
                    t.abort();
                }
            }
            _ => bail!("unknown command {cmd:?} (remediate, stop nginx|ssh|silent|dns, quit)"),
        }
        Ok(true)
    }
}

fn make_dir(dir: Option<PathBuf>) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = match dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("demo-services-{}", std::process::id())),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    dir.canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))
}

async fn openssl_cert(dir: &Path, domain: &str) -> Result<()> {
    let openssl = program("openssl", "openssl")?;
    let out = Command::new(&openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .arg("-subj")
        .arg(format!("/CN={domain}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{domain},IP:127.0.0.1"))
        .stdin(Stdio::null())
        .output()
        .await
        .context("cannot run openssl")?;
    if !out.status.success() {
        bail!("openssl req failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

async fn run(args: Args) -> Result<()> {
    let nginx_bin = program("nginx", "nginx")?;
    let dnsmasq_bin = program("dnsmasq", "dnsmasq-base")?;
    for (port, udp) in [
        (args.tls_port, false),
        (args.ssh_port, false),
        (args.silent_port, false),
        (args.dns_port, true),
    ] {
        check_free(port, udp)?;
    }
    if let Some(ip) = args.extra_ips.iter().find(|ip| !ip.is_loopback()) {
        bail!("--extra-ip {ip}: only loopback addresses (127.0.0.0/8)");
    }
    if !matches!(args.toolchain.as_str(), "nmap" | "projectdiscovery" | "auto") {
        bail!("--toolchain: must be nmap, projectdiscovery or auto, got {:?}", args.toolchain);
    }
    let dir = make_dir(args.dir.clone())?;
    openssl_cert(&dir, &args.domain).await?;
    let templates = dir.join("nuclei-templates");
    std::fs::create_dir_all(&templates)?;
    for (name, text) in NUCLEI_TEMPLATES {
        std::fs::write(templates.join(name), text)?;
    }

    let mut svc = Services {
        nginx: Nginx {
            bin: nginx_bin,
            dir: dir.clone(),
            ips: args.ips(),
            port: args.tls_port,
            child: None,
        },
        dns: Dnsmasq {
            bin: dnsmasq_bin,
            dir: dir.clone(),
            ips: args.ips(),
            port: args.dns_port,
            domain: args.domain.clone(),
            child: None,
        },
        ssh: None,
        silent: None,
    };
    let started = async {
        svc.nginx.start(false).await?;
        svc.dns.start("~all").await?;
        svc.ssh = Some(listener(&args.ips(), args.ssh_port, SSH_BANNER).await?);
        svc.silent = Some(listener(&args.ips(), args.silent_port, b"").await?);
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = started {
        svc.stop_all().await;
        return Err(e);
    }

    let nmap = ["/usr/bin/nmap", "/usr/local/bin/nmap"]
        .map(PathBuf::from)
        .into_iter()
        .find(|p| p.is_file());
    let assets = dir.join("assets.toml");
    std::fs::write(&assets, assets_toml(&args, &dir, nmap.as_deref()))?;
    let ready: BTreeMap<&str, serde_json::Value> = BTreeMap::from([
        ("dir", json!(dir)),
        ("assets", json!(assets)),
        ("domain", json!(args.domain)),
        ("tls_port", json!(args.tls_port)),
        ("ssh_port", json!(args.ssh_port)),
        ("silent_port", json!(args.silent_port)),
        ("dns", json!(format!("127.0.0.1:{}", args.dns_port))),
        ("tenant_id", json!(TENANT)),
        ("ips", json!(args.ips())),
    ]);
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("ready {}\n", serde_json::to_string(&ready)?).as_bytes())
        .await?;
    stdout.flush().await?;

    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let line = tokio::select! {
            l = lines.next_line() => l,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        let Ok(Some(line)) = line else { break };
        let cmd = line.trim().to_string();
        let reply = match svc.command(&cmd).await {
            Ok(false) => break,
            Ok(true) => format!("ok {cmd}\n"),
            Err(e) => format!("error {}\n", format!("{e:#}").replace('\n', " ")),
        };
        stdout.write_all(reply.as_bytes()).await?;
        stdout.flush().await?;
    }
    svc.stop_all().await;
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = stdout.write_all(b"bye\n").await;
    let _ = stdout.flush().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo-services: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-services: {e:#}");
            ExitCode::FAILURE
        }
    }
}
