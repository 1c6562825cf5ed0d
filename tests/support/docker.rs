//! A real Docker daemon with our locally built images: the tests run `scripts/docker-up`
//! (starts `dockerd` if none answers) and `scripts/images` (debootstrap + `docker import`, cached)
//! and fail, never skip, when either does not work.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context as _;

/// The repository root.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

/// Makes sure the daemon answers and `framework/<image>:latest` exists.
pub fn ready(image: &str) -> anyhow::Result<()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let up = Command::new(root().join("scripts/docker-up")).status().context("run scripts/docker-up")?;
    anyhow::ensure!(up.success(), "the Docker daemon could not be started (scripts/docker-up)");
    let built = Command::new(root().join("scripts/images")).arg(image).status().context("run scripts/images")?;
    anyhow::ensure!(built.success(), "the {image} image could not be built (scripts/images {image})");
    Ok(())
}

/// Names of the containers (running or not) whose name contains `part`.
pub fn containers(part: &str) -> anyhow::Result<Vec<String>> {
    let out = Command::new("docker").args(["ps", "-a", "--format", "{{.Names}}"]).output().context("docker ps")?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter(|n| n.contains(part)).map(str::to_string).collect())
}

/// The process id of the executor running `executor_id` (found by its MESOS_EXECUTOR_ID).
pub fn executor_pid(executor_id: &str) -> Option<i32> {
    let needle = format!("MESOS_EXECUTOR_ID={executor_id}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let env = std::fs::read(e.path().join("environ")).ok()?;
        env.split(|b| *b == 0).any(|v| v == needle.as_bytes()).then_some(pid)
    })
}

/// Makes sure the daemon answers and the showcase image `framework/guestbook:latest` holds the
/// `guestbook` and `framework` binaries of this test build's profile.
pub fn guestbook_ready() -> anyhow::Result<()> {
    for image in ["mariadb", "redis"] {
        ready(image)?;
    }
    let profile =
        crate::framework::binary().parent().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let built = Command::new(root().join("scripts/images"))
        .arg("guestbook")
        .env("PROFILE", &profile)
        .current_dir(root())
        .status()
        .context("run scripts/images guestbook")?;
    anyhow::ensure!(built.success(), "the guestbook image could not be built (PROFILE={profile} scripts/images guestbook)");
    Ok(())
}

/// The id of the running container of task `task_id` (found by the executor's task label).
pub fn container_of(task_id: &str) -> anyhow::Result<Option<String>> {
    let out =
        Command::new("docker").args(["ps", "-q", "--filter", &format!("label=framework.task={task_id}")]).output().context("docker ps")?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string))
}
