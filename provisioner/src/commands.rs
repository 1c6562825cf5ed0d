//! The commands (`plan`, `apply`, `destroy`, `scale`) over a cluster file: load and validate the
//! file first (no AWS call for an invalid one), then observe, plan and execute.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::aws::execute::Executor;
use crate::aws::observe::{Observed, observe};
use crate::aws::{Aws, Connection, wait};
use crate::cluster::{self, Cluster};
use crate::desired::desired;
use crate::model::{ResourceId, Spec, State};
use crate::plan::{Plan, plan};
use crate::role::Role;
use crate::{Error, scale};

/// How the commands reach AWS and how long they wait.
#[derive(Debug, Clone)]
pub struct Options {
    /// Endpoint, credentials; the region comes from the file when it names one.
    pub connection: Connection,
    /// How long apply waits for instances, and destroy for groups to go.
    pub wait_timeout: Duration,
    /// How often they look.
    pub poll_interval: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self { connection: Connection::default(), wait_timeout: Duration::from_secs(900), poll_interval: Duration::from_secs(10) }
    }
}

/// Reads and validates a cluster file.
pub fn load(path: &Path) -> Result<(Cluster, String), Error> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read { file: file.clone(), source })?;
    Ok((cluster::parse(&file, &text)?, text))
}

/// Connects to the cluster's region.
pub async fn connect(cluster: &Cluster, options: &Options) -> Result<Aws, Error> {
    let mut conn = options.connection.clone();
    if cluster.region.is_some() {
        conn.region.clone_from(&cluster.region);
    }
    Aws::connect(&conn).await
}

/// What `apply` would do for the file at `path`.
pub async fn plan_file(path: &Path, options: &Options) -> Result<Plan, Error> {
    let (cluster, _) = load(path)?;
    let aws = connect(&cluster, options).await?;
    let observed = observe(&aws, &cluster.name).await?;
    Ok(plan(&desired(&cluster), &observed.state)?)
}

/// Makes AWS match the file, then waits for the groups' instances; returns what was done.
pub async fn apply_file(path: &Path, options: &Options, progress: &mut dyn FnMut(String)) -> Result<Plan, Error> {
    let (cluster, _) = load(path)?;
    apply_cluster(&cluster, options, progress).await
}

/// Makes AWS match a validated cluster, then waits for the groups' instances.
pub async fn apply_cluster(cluster: &Cluster, options: &Options, progress: &mut dyn FnMut(String)) -> Result<Plan, Error> {
    let aws = connect(cluster, options).await?;
    let want = desired(cluster);
    let observed = observe(&aws, &cluster.name).await?;
    let the_plan = plan(&want, &observed.state)?;
    run(&aws, cluster, &observed, &the_plan, options, progress).await?;
    let groups: BTreeMap<Role, (String, u32)> = want
        .iter()
        .filter_map(|(id, spec)| match (id, spec) {
            (ResourceId::AutoScalingGroup(role), Spec::AutoScalingGroup(asg)) => {
                Some((*role, (crate::desired::resource_name(&cluster.name, *role), asg.desired)))
            }
            _ => None,
        })
        .collect();
    wait::in_service(&aws, &groups, options.wait_timeout, options.poll_interval, progress).await?;
    Ok(the_plan)
}

/// Deletes everything tagged for the file's cluster (and nothing else); returns what was done.
pub async fn destroy_file(path: &Path, options: &Options, progress: &mut dyn FnMut(String)) -> Result<Plan, Error> {
    let (cluster, _) = load(path)?;
    let aws = connect(&cluster, options).await?;
    let observed = observe(&aws, &cluster.name).await?;
    let the_plan = plan(&State::new(), &observed.state)?;
    run(&aws, &cluster, &observed, &the_plan, options, progress).await?;
    Ok(the_plan)
}

/// Sets a role's count in the file (keeping its layout), checks the result, writes it, and
/// applies it.
pub async fn scale_file(path: &Path, role: Role, count: u32, options: &Options, progress: &mut dyn FnMut(String)) -> Result<Plan, Error> {
    let (_, text) = load(path)?;
    let file = path.display().to_string();
    let edited = scale::set_count(&file, &text, role, count)?;
    let cluster = cluster::parse(&file, &edited)?;
    std::fs::write(path, &edited).map_err(|source| Error::Write { file, source })?;
    apply_cluster(&cluster, options, progress).await
}

async fn run(
    aws: &Aws,
    cluster: &Cluster,
    observed: &Observed,
    the_plan: &Plan,
    options: &Options,
    progress: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let mut executor = Executor::new(aws, &cluster.name, observed);
    executor.timeout = options.wait_timeout;
    executor.poll = options.poll_interval;
    executor.run(&the_plan.actions, progress).await
}
