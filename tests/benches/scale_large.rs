//! Launch throughput, API latency and memory at the scale on the local cluster's simulated
//! agents (tasks go to TASK_RUNNING without processes): `SCALE_APPS` apps of
//! `SCALE_TASKS / SCALE_APPS` instances each, created by `SCALE_CLIENTS` concurrent
//! `POST /v2/apps` clients on `SCALE_AGENTS` agents, in two halves. After each half: the time to
//! all TASK_RUNNING, then p50/p99 of `GET /v2/apps/{id}` and `GET /v2/apps` twice: right after
//! the last task runs (acknowledgements and deployment ends still under way in both processes)
//! and again once settled, `SCALE_SETTLE` seconds later; at the end the `framework` process's RSS
//! right after those reads and 5 s later, and its peak RSS (`VmHWM`).
//!
//! Baseline in the same run, on a fresh cluster of the same size before the framework's run: a
//! minimal v1 scheduler in this process (ACCEPTs every offer with up to 100 tasks, the
//! framework's `--max-instances-per-offer`, and acknowledges every update; 64 calls in flight)
//! launching the same number of tasks. It measures what the local master, its simulated agents and
//! the HTTP scheduler API can do on this machine without any of the framework's work.
//!
//! Sizes (environment): `SCALE_AGENTS` (default 10000), `SCALE_APPS` (20000), `SCALE_TASKS`
//! (200000), `SCALE_CLIENTS` (16), `SCALE_TIMEOUT` (seconds per phase, 900), `SCALE_BASELINE`
//! (0 skips the baseline), `SCALE_SETTLE` (seconds, 3), `SCALE_HOLD` (seconds to keep the
//! framework up at the end, for profiling), `SCALE_DEBUG` (set: print the slowest reads). Quick
//! size: `SCALE_AGENTS=1000 SCALE_APPS=2000 SCALE_TASKS=20000`.
//!
//! Run: `cargo build --release -p framework && cargo bench -p integration-tests --bench scale_large`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::{env_or, load_average, metric, ms, pct, proc_mib};
use integration_tests::framework::Framework;
use integration_tests::work_dir;
use mesos_local::LocalCluster;
use mesos_proto::codec::Encoding;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Launches per offer, for the baseline as for the framework (its default).
const PER_OFFER: usize = 100;

struct Size {
    agents: usize,
    apps: usize,
    per_app: usize,
    clients: usize,
    timeout: Duration,
}

impl Size {
    fn tasks(&self) -> usize {
        self.apps * self.per_app
    }
}

async fn make_cluster(name: &str, size: &Size) -> LocalCluster {
    // Room for 400 tasks of 0.01 cpus per agent, so that placement never runs short.
    integration_tests::cluster(name, size.agents, |cfg| {
        cfg.simulated = true;
        for a in &mut cfg.agents {
            a.resources = mesos_local::Resources::new(&[("cpus", 4.0), ("mem", 4096.0), ("disk", 1000.0)], &[]);
        }
    })
    .await
}

/// The minimal scheduler: returns the time from SUBSCRIBED to `tasks` TASK_RUNNING updates. It
/// works on typed protobuf messages (no JSON on the way), reads events on one task and posts calls
/// from another with 64 in flight, so that reading never waits for posting.
async fn baseline(size: &Size) -> anyhow::Result<Duration> {
    use futures_util::StreamExt as _;
    use mesos_proto::stream::RecordStream;
    use mesos_proto::v1::scheduler::{Call, Event, call, event};
    use mesos_proto::v1::{self, offer::Operation};
    use prost::Message as _;

    let c = make_cluster("bench-scale-large-base", size).await;
    let url = c.url();
    let http = reqwest::Client::new();
    let subscribe = Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info: v1::FrameworkInfo {
                user: "root".into(),
                name: "baseline".into(),
                failover_timeout: Some(0.0),
                ..Default::default()
            },
            ..Default::default()
        }),
        ..Default::default()
    };
    let resp = http
        .post(format!("{url}/api/v1/scheduler"))
        .header("Content-Type", Encoding::Protobuf.content_type())
        .header("Accept", Encoding::Protobuf.content_type())
        .body(subscribe.encode_to_vec())
        .send()
        .await?;
    anyhow::ensure!(resp.status().as_u16() == 200, "SUBSCRIBE answered {}", resp.status());
    let stream_id = resp.headers().get("Mesos-Stream-Id").and_then(|v| v.to_str().ok()).context("Mesos-Stream-Id")?.to_owned();
    let mut records = RecordStream::new(Box::pin(resp.bytes_stream()), 64 << 20);
    let first = Event::decode(records.next().await.context("no SUBSCRIBED")??.as_ref())?;
    let framework_id = first.subscribed.context("first event is SUBSCRIBED")?.framework_id;

    let (call_tx, mut call_rx) = tokio::sync::mpsc::unbounded_channel::<Call>();
    let poster = {
        let (url, stream_id, http) = (url.clone(), stream_id.clone(), http.clone());
        tokio::spawn(async move {
            let in_flight = Arc::new(Semaphore::new(64));
            let mut calls = JoinSet::new();
            while let Some(call) = call_rx.recv().await {
                let permit = in_flight.clone().acquire_owned().await?;
                let req = http
                    .post(format!("{url}/api/v1/scheduler"))
                    .header("Content-Type", Encoding::Protobuf.content_type())
                    .header("Mesos-Stream-Id", &stream_id)
                    .body(call.encode_to_vec());
                calls.spawn(async move {
                    let resp = req.send().await;
                    drop(permit);
                    let resp = resp?;
                    let code = resp.status().as_u16();
                    anyhow::ensure!(code == 202, "baseline call answered {code}: {}", resp.text().await.unwrap_or_default());
                    anyhow::Ok(())
                });
                while let Some(done) = calls.try_join_next() {
                    done??;
                }
            }
            while let Some(done) = calls.join_next().await {
                done??;
            }
            anyhow::Ok(())
        })
    };
    let scalar = |name: &str, value: f64| v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    };
    let total = size.tasks();
    let (mut launched, mut running) = (0usize, 0usize);
    let t = Instant::now();
    while running < total {
        let record = tokio::time::timeout(size.timeout, records.next())
            .await
            .with_context(|| format!("baseline stalled at {running} of {total} running"))?
            .context("stream ended")??;
        let ev = Event::decode(record.as_ref())?;
        let mut out: Vec<Call> = Vec::new();
        match ev.r#type() {
            event::Type::Offers => {
                for offer in ev.offers.map(|o| o.offers).unwrap_or_default() {
                    if launched >= total {
                        out.push(Call {
                            r#type: Some(call::Type::Decline as i32),
                            decline: Some(call::Decline {
                                offer_ids: vec![offer.id],
                                filters: Some(v1::Filters { refuse_seconds: Some(120.0) }),
                            }),
                            ..Default::default()
                        });
                        continue;
                    }
                    let n = PER_OFFER.min(total - launched);
                    let task_infos = (launched..launched + n)
                        .map(|i| v1::TaskInfo {
                            name: "base".into(),
                            task_id: v1::TaskId { value: format!("base.{i}") },
                            agent_id: offer.agent_id.clone(),
                            resources: vec![scalar("cpus", 0.01), scalar("mem", 1.0)],
                            command: Some(v1::CommandInfo { value: Some("sleep 1000".into()), ..Default::default() }),
                            ..Default::default()
                        })
                        .collect();
                    launched += n;
                    out.push(Call {
                        r#type: Some(call::Type::Accept as i32),
                        accept: Some(call::Accept {
                            offer_ids: vec![offer.id],
                            operations: vec![Operation {
                                r#type: Some(v1::offer::operation::Type::Launch as i32),
                                launch: Some(v1::offer::operation::Launch { task_infos }),
                                ..Default::default()
                            }],
                            filters: Some(v1::Filters { refuse_seconds: Some(1.0) }),
                        }),
                        ..Default::default()
                    });
                }
            }
            event::Type::Update => {
                let status = ev.update.context("UPDATE without update")?.status;
                if status.state() == v1::TaskState::TaskRunning {
                    running += 1;
                }
                if let (Some(uuid), Some(agent_id)) = (status.uuid, status.agent_id) {
                    out.push(Call {
                        r#type: Some(call::Type::Acknowledge as i32),
                        acknowledge: Some(call::Acknowledge { agent_id, task_id: status.task_id, uuid }),
                        ..Default::default()
                    });
                }
            }
            _ => {}
        }
        for mut call in out {
            call.framework_id = Some(framework_id.clone());
            if call_tx.send(call).is_err() {
                break;
            }
        }
        if poster.is_finished() {
            break;
        }
    }
    let took = t.elapsed();
    drop(call_tx);
    poster.await??;
    anyhow::ensure!(running >= total, "the baseline stopped at {running} of {total} running");
    c.shutdown().await;
    Ok(took)
}

/// Client side of the framework's API for this bench.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn timed(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(u16, Duration)> {
        let t = Instant::now();
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        resp.bytes().await?;
        Ok((status, t.elapsed()))
    }

    async fn get(&self, path: &str) -> anyhow::Result<(u16, Duration)> {
        self.timed(self.http.get(format!("{}{path}", self.url))).await
    }

    async fn running(&self) -> anyhow::Result<usize> {
        let text = self.http.get(format!("{}/metrics/prometheus", self.url)).send().await?.text().await?;
        Ok(metric(&text, "marathon_instances_running_gauge").unwrap_or(0.0) as usize)
    }
}

/// Creates apps `from..to` with `clients` concurrent clients; returns each POST's latency and
/// the number of answers other than 201.
async fn create_apps(api: &Api, size: &Size, from: usize, to: usize) -> anyhow::Result<(Vec<Duration>, usize)> {
    let next = Arc::new(AtomicUsize::new(from));
    let mut clients = JoinSet::new();
    for _ in 0..size.clients {
        let (api, next, per_app) = (api.clone(), next.clone(), size.per_app);
        clients.spawn(async move {
            let mut lat = Vec::new();
            let mut refused = 0;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= to {
                    return anyhow::Ok((lat, refused));
                }
                let app = json!({"id": format!("/app-{i}"), "cmd": "sleep 1000", "cpus": 0.01, "mem": 1, "instances": per_app, "portDefinitions": []});
                let req = api.http.post(format!("{}/v2/apps", api.url)).header("Content-Type", "application/json").body(app.to_string());
                let (status, took) = api.timed(req).await?;
                if status != 201 {
                    refused += 1;
                }
                lat.push(took);
            }
        });
    }
    let (mut all, mut refused) = (Vec::new(), 0);
    while let Some(r) = clients.join_next().await {
        let (lat, n) = r??;
        all.extend(lat);
        refused += n;
    }
    Ok((all, refused))
}

/// Waits until `target` instances run; returns false on timeout. Logs progress to stderr.
async fn wait_running(api: &Api, target: usize, size: &Size, pid: u32) -> anyhow::Result<bool> {
    let t = Instant::now();
    let mut last_log = Instant::now();
    loop {
        let n = api.running().await?;
        if n >= target {
            return Ok(true);
        }
        if last_log.elapsed() > Duration::from_secs(10) {
            eprintln!("  {:>6.0?}: {n} of {target} running, framework RSS {:.0} MiB", t.elapsed(), proc_mib(pid, "VmRSS"));
            last_log = Instant::now();
        }
        if t.elapsed() > size.timeout {
            eprintln!("  timed out after {:?} at {n} of {target} running", size.timeout);
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Latencies of `GET /v2/apps/{id}` (200 random apps among the first `apps`) and `GET /v2/apps`
/// (20), measured by a client on a thread and runtime of its own: this process also hosts the
/// master and its simulated agents, whose work must not delay the measuring client's polls.
async fn read_latencies(api: &Api, apps: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let url = api.url.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(anyhow::Error::from).and_then(|rt| {
            rt.block_on(async {
                let api = Api { http: reqwest::Client::new(), url };
                measure_reads(&api, apps).await
            })
        });
        let _ = tx.send(result);
    });
    rx.await.context("the measuring thread stopped")?
}

/// See [`read_latencies`].
async fn measure_reads(api: &Api, apps: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut one = Vec::new();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let started = std::time::SystemTime::now();
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (status, took) = api.get(&format!("/v2/apps/app-{}", seed as usize % apps)).await?;
        anyhow::ensure!(status == 200, "GET /v2/apps/{{id}} answered {status}");
        one.push(took);
    }
    let mut all = Vec::new();
    for _ in 0..20 {
        let (status, took) = api.get("/v2/apps").await?;
        anyhow::ensure!(status == 200, "GET /v2/apps answered {status}");
        all.push(took);
    }
    if std::env::var("SCALE_DEBUG").is_ok() {
        let mut o: Vec<(usize, Duration)> = one.iter().copied().enumerate().collect();
        o.sort_by_key(|x| std::cmp::Reverse(x.1));
        let epoch = started.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64();
        eprintln!("  id reads from {epoch:.3} s since the epoch; slowest {:?}; full reads in order {:?}", &o[..4], all);
    }
    Ok((one, all))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "large scale benchmark: run it with `cargo bench -p integration-tests --bench scale_large` (sizes: SCALE_AGENTS, SCALE_APPS, SCALE_TASKS; extra framework flags: SCALE_FRAMEWORK_ARGS)"
        );
        return Ok(());
    }
    let apps = env_or("SCALE_APPS", 20_000).max(2);
    let size = Size {
        agents: env_or("SCALE_AGENTS", 10_000),
        apps,
        per_app: (env_or("SCALE_TASKS", 200_000) / apps).max(1),
        clients: env_or("SCALE_CLIENTS", 16).max(1),
        timeout: Duration::from_secs(env_or("SCALE_TIMEOUT", 900) as u64),
    };
    let tasks = size.tasks();
    eprintln!(
        "scale_large: {} agents, {} apps × {} = {tasks} tasks, {} clients, load {}",
        size.agents,
        size.apps,
        size.per_app,
        size.clients,
        load_average()
    );

    let base = if env_or("SCALE_BASELINE", 1) == 0 {
        None
    } else {
        let b = baseline(&size).await?;
        eprintln!("baseline: {tasks} tasks running in {b:.2?}");
        Some(b)
    };

    let c = make_cluster("bench-scale-large", &size).await;
    let data_dir = work_dir("bench-scale-large");
    // SCALE_FRAMEWORK_ARGS adds flags, e.g. `--store-engine redb` for the store comparison.
    let extra = std::env::var("SCALE_FRAMEWORK_ARGS").unwrap_or_default();
    let mut args = vec!["--max-running-deployments", "1000000"];
    args.extend(extra.split_whitespace());
    let fw = Framework::start(&c.url(), &data_dir, &args).await?;
    let pid = fw.pid().context("framework pid")?;
    let api = Api { http: reqwest::Client::new(), url: fw.url.clone() };
    let half = size.apps / 2;
    let mut posts = Vec::new();
    let mut refused = 0;
    let mut reads = Vec::new();
    let mut launch = Duration::ZERO;
    let mut complete = true;
    for (from, to) in [(0, half), (half, size.apps)] {
        let t = Instant::now();
        let (lat, n) = create_apps(&api, &size, from, to).await?;
        let posted = t.elapsed();
        posts.extend(lat);
        refused += n;
        let ok = wait_running(&api, to * size.per_app, &size, pid).await?;
        let took = t.elapsed();
        launch += took;
        eprintln!("apps {from}..{to}: POSTs took {posted:.2?}, all running after {took:.2?} (complete: {ok})");
        complete &= ok;
        let (one, all) = read_latencies(&api, to).await?;
        tokio::time::sleep(Duration::from_secs(env_or("SCALE_SETTLE", 3) as u64)).await;
        let (one_settled, all_settled) = read_latencies(&api, to).await?;
        reads.push((to, to * size.per_app, [(one, all), (one_settled, all_settled)]));
        if !ok {
            break;
        }
    }
    if let Ok(hold) = std::env::var("SCALE_HOLD") {
        eprintln!("holding for {hold} s: framework at {} (pid {pid})", fw.url);
        tokio::time::sleep(Duration::from_secs(hold.parse().unwrap_or(0))).await;
    }
    let rss = proc_mib(pid, "VmRSS");
    // The allocator returns freed pages after a delay (mimalloc: 1 s); at rest is what the
    // process holds for its state.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_at_rest = proc_mib(pid, "VmRSS");
    let peak = proc_mib(pid, "VmHWM");
    let running = api.running().await?;

    println!(
        "\nscale_large: {} simulated agents, {} apps × {} instances, {} POST clients; load average at start {}",
        size.agents,
        size.apps,
        size.per_app,
        size.clients,
        load_average()
    );
    println!("| measurement | value | baseline (same run) | ratio |");
    println!("|---|---|---|---|");
    let rate = running as f64 / launch.as_secs_f64();
    match base {
        Some(b) => {
            let base_rate = tasks as f64 / b.as_secs_f64();
            println!(
                "| POST → all TASK_RUNNING, {running} tasks{} | {launch:.2?} ({rate:.0} tasks/s) | minimal v1 scheduler: {b:.2?} ({base_rate:.0} tasks/s) | {:.2} |",
                if complete { "" } else { " (INCOMPLETE: timed out)" },
                rate / base_rate
            );
        }
        None => println!("| POST → all TASK_RUNNING, {running} tasks | {launch:.2?} ({rate:.0} tasks/s) | — | — |"),
    }
    println!(
        "| POST /v2/apps p50 / p99 ({} clients, during launches; {} POSTs, {refused} not 201) | {} / {} | | |",
        size.clients,
        posts.len(),
        ms(pct(&posts, 0.5)),
        ms(pct(&posts, 0.99))
    );
    let settle = env_or("SCALE_SETTLE", 3);
    for (apps, tasks, [(one, all), (one_settled, all_settled)]) in &reads {
        println!(
            "| GET /v2/apps/{{id}} p50 / p99 at {apps} apps / {tasks} tasks: right after all running; {settle} s later | {} / {}; {} / {} | | |",
            ms(pct(one, 0.5)),
            ms(pct(one, 0.99)),
            ms(pct(one_settled, 0.5)),
            ms(pct(one_settled, 0.99))
        );
        println!(
            "| GET /v2/apps p50 / p99 at {apps} apps / {tasks} tasks: right after all running; {settle} s later | {} / {}; {} / {} | | |",
            ms(pct(all, 0.5)),
            ms(pct(all, 0.99)),
            ms(pct(all_settled, 0.5)),
            ms(pct(all_settled, 0.99))
        );
    }
    println!(
        "| framework RSS right after the reads / at rest 5 s later / peak (VmHWM) | {rss:.0} MiB / {rss_at_rest:.0} MiB / {peak:.0} MiB | | |"
    );
    drop(fw);
    c.shutdown().await;
    // The data directory holds a gigabyte or more of instance records at full size.
    let _ = std::fs::remove_dir_all(&data_dir);
    Ok(())
}
