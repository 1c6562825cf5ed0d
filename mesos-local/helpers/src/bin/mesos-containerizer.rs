//! `mesos-containerizer launch`: our stand-in for the helper a real Mesos 1.x agent (Mesos
//! containerizer, posix launcher) runs to start a container's first process, and that its command
//! executor runs to start the task.
//!
//! Flags come from `MESOS_CONTAINERIZER_<FLAG>` environment variables (the agent's way) or
//! `--flag=value` arguments (the command executor's way; they win): `launch_info` (a
//! `ContainerLaunchInfo` as JSON), `pipe_read`/`pipe_write` (the agent's control pipe),
//! `runtime_directory`. With a runtime directory (the agent's case) the process is forked after
//! the agent's go-ahead (one byte on the pipe), signals are passed on to it, and its raw wait
//! status is written as decimal text to `<runtime_directory>/status`, which the agent reads; a
//! failure of ours writes 256 (exit status 1). Without one (the executor's case) the command
//! replaces this process. Not supported: container images (rootfs), namespaces, capabilities,
//! seccomp, rlimits, mounts; a launch that asks for them fails with a message.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::Value as Json;

/// The flags of `launch`, from the environment and then the arguments.
#[derive(Default)]
struct Flags {
    launch_info: Option<String>,
    pipe_read: Option<i32>,
    pipe_write: Option<i32>,
    runtime_directory: Option<PathBuf>,
}

fn flags(args: &[String]) -> anyhow::Result<Flags> {
    let mut raw: BTreeMap<String, String> =
        std::env::vars().filter_map(|(k, v)| k.strip_prefix("MESOS_CONTAINERIZER_").map(|f| (f.to_ascii_lowercase(), v))).collect();
    for arg in args {
        let Some((name, value)) = arg.strip_prefix("--").and_then(|a| a.split_once('=')) else {
            bail!("unexpected argument '{arg}' (flags are --name=value)");
        };
        raw.insert(name.to_owned(), value.to_owned());
    }
    let fd = |name: &str| -> anyhow::Result<Option<i32>> {
        raw.get(name).map(|v| v.parse::<i32>().with_context(|| format!("--{name} is not a file descriptor: {v}"))).transpose()
    };
    Ok(Flags {
        launch_info: raw.get("launch_info").cloned(),
        pipe_read: fd("pipe_read")?,
        pipe_write: fd("pipe_write")?,
        runtime_directory: raw.get("runtime_directory").map(PathBuf::from),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("launch") {
        eprintln!("usage: mesos-containerizer launch [--launch_info=<json>] (the only subcommand of this stand-in)");
        std::process::exit(1);
    }
    let flags = match flags(&args[2..]) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("mesos-containerizer: {e:#}");
            std::process::exit(1);
        }
    };
    // Opened first, so that any failure after this is reported to the agent.
    let mut status_file = flags
        .runtime_directory
        .as_ref()
        .and_then(|dir| std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(dir.join("status")).ok());
    match launch(&flags) {
        Ok(code) => {
            if let (Some(f), Some(code)) = (status_file.as_mut(), code) {
                let _ = f.write_all(code.to_string().as_bytes());
            }
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("mesos-containerizer: {e:#}");
            if let Some(f) = status_file.as_mut() {
                // W_EXITCODE(1, 0).
                let _ = f.write_all(b"256");
            }
            std::process::exit(1);
        }
    }
}

/// Runs the launch; the child's raw wait status when this process waited for it.
fn launch(flags: &Flags) -> anyhow::Result<Option<i32>> {
    // A session of its own, as Mesos's POSIX launcher gives every container (its SETSID child
    // hook): what it runs outlives the agent, so that a checkpointing framework's executors are
    // still there when a restarted agent recovers. (A process group leader cannot, and need not.)
    let _ = nix::unistd::setsid();
    let info: Json =
        serde_json::from_str(flags.launch_info.as_deref().context("no launch_info was given")?).context("launch_info is not JSON")?;
    for unsupported in ["rootfs", "mounts", "clone_namespaces", "capabilities", "effective_capabilities", "seccomp", "rlimits"] {
        if info.get(unsupported).is_some_and(|v| !v.is_null() && v != &Json::Array(vec![])) {
            bail!("launch_info.{unsupported} is not supported by this stand-in");
        }
    }
    let command = info.get("command").context("launch_info has no command")?;
    let value = command["value"].as_str().context("launch_info.command has no value")?;
    match (flags.pipe_read, flags.pipe_write) {
        (Some(read), Some(write)) => {
            // The agent's descriptors, known by number: our write end is closed (so that the
            // agent's death reads as end of file), and the read end is reopened through /proc.
            nix::unistd::close(write).with_context(|| format!("descriptor {write} is not open"))?;
            let mut pipe =
                std::fs::File::open(format!("/proc/self/fd/{read}")).with_context(|| format!("descriptor {read} is not open"))?;
            nix::unistd::close(read).context("closing the control pipe")?;
            let mut byte = [0u8; 1];
            if !matches!(pipe.read(&mut byte), Ok(1)) {
                bail!("Failed to synchronize with agent (it's probably exited)");
            }
        }
        (None, None) => {}
        _ => bail!("pipe_read and pipe_write must be given together"),
    }
    for pre in info["pre_exec_commands"].as_array().into_iter().flatten() {
        let status = command_of(pre)?.status().context("a pre-exec command could not start")?;
        anyhow::ensure!(status.success(), "pre-exec command {pre} failed: {status}");
    }
    if let Some(dir) = info["working_directory"].as_str() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("mesos-containerizer: cannot create the working directory {dir}: {e}");
        }
        std::env::set_current_dir(dir).with_context(|| format!("cannot change to the working directory {dir}"))?;
    }
    let mut cmd = command_of(command)?;
    if let Some(vars) = info["environment"]["variables"].as_array() {
        cmd.env_clear();
        let mut has_path = false;
        for v in vars {
            let (Some(name), value) = (v["name"].as_str(), v["value"].as_str().unwrap_or_default()) else { continue };
            has_path |= name == "PATH";
            cmd.env(name, value);
        }
        if !has_path {
            cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        }
    }
    if let Some(user) = info["user"].as_str() {
        let u = nix::unistd::User::from_name(user).ok().flatten().with_context(|| format!("no user '{user}' on this host"))?;
        if u.uid != nix::unistd::geteuid() {
            cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
        }
    }
    if flags.runtime_directory.is_none() {
        let e = cmd.exec();
        bail!("Failed to execute '{value}': {e}");
    }
    let mut child = cmd.spawn().with_context(|| format!("Failed to execute '{value}'"))?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    forward_signals(pid);
    let status = child.wait().context("waiting for the container's process")?;
    Ok(Some(status.into_raw()))
}

/// A command from a `CommandInfo` as JSON: `/bin/sh -c value` when `shell` (Mesos's default),
/// else `value` with `arguments` as its whole argv.
fn command_of(info: &Json) -> anyhow::Result<Command> {
    let value = info["value"].as_str().context("a command without a value")?;
    let args: Vec<&str> = info["arguments"].as_array().into_iter().flatten().filter_map(Json::as_str).collect();
    if info["shell"].as_bool().unwrap_or(true) {
        let mut c = Command::new("/bin/sh");
        c.arg0("sh").arg("-c").arg(value);
        Ok(c)
    } else {
        let mut c = Command::new(value);
        if let Some((first, rest)) = args.split_first() {
            c.arg0(first).args(rest);
        }
        Ok(c)
    }
}

/// Passes the signals an agent or executor sends (TERM, INT, HUP, QUIT, USR1, USR2) on to the
/// container's process, from a thread of its own.
fn forward_signals(child: nix::unistd::Pid) {
    use tokio::signal::unix::{SignalKind, signal};
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        rt.block_on(async move {
            let kinds = [
                (SignalKind::terminate(), nix::sys::signal::Signal::SIGTERM),
                (SignalKind::interrupt(), nix::sys::signal::Signal::SIGINT),
                (SignalKind::hangup(), nix::sys::signal::Signal::SIGHUP),
                (SignalKind::quit(), nix::sys::signal::Signal::SIGQUIT),
                (SignalKind::user_defined1(), nix::sys::signal::Signal::SIGUSR1),
                (SignalKind::user_defined2(), nix::sys::signal::Signal::SIGUSR2),
            ];
            let mut tasks = Vec::new();
            for (kind, sig) in kinds {
                let Ok(mut stream) = signal(kind) else { continue };
                tasks.push(tokio::spawn(async move {
                    while stream.recv().await.is_some() {
                        let _ = nix::sys::signal::kill(child, sig);
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
        });
    });
}
