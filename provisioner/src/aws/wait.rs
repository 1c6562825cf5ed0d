//! Waiting for Auto Scaling Groups: until their instances are InService, or until they are gone.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_autoscaling::types::LifecycleState;

use super::{Aws, fail};
use crate::Error;
use crate::model::ResourceId;
use crate::role::Role;

/// Polls until each group in `groups` (role → (name, desired)) has `desired` instances
/// InService, calling `progress` with one line per poll. moto reports the instances of its
/// groups as InService at once; real groups take minutes.
pub async fn in_service(
    aws: &Aws,
    groups: &BTreeMap<Role, (String, u32)>,
    timeout: Duration,
    poll: Duration,
    progress: &mut dyn FnMut(String),
) -> Result<(), Error> {
    let start = tokio::time::Instant::now();
    loop {
        let mut status = Vec::new();
        let mut done = true;
        for (role, (name, desired)) in groups {
            let id = ResourceId::AutoScalingGroup(*role);
            let out = aws
                .autoscaling
                .describe_auto_scaling_groups()
                .auto_scaling_group_names(name)
                .send()
                .await
                .map_err(|e| fail(&id, "autoscaling:DescribeAutoScalingGroups", e))?;
            let instances = out.auto_scaling_groups().first().map(|g| g.instances().to_vec()).unwrap_or_default();
            let in_service = instances.iter().filter(|i| i.lifecycle_state() == Some(&LifecycleState::InService)).count();
            done &= in_service == *desired as usize && instances.len() == *desired as usize;
            status.push(format!("{role} {in_service}/{desired}"));
        }
        let elapsed = start.elapsed();
        progress(format!("waiting for InService: {} ({}s)", status.join(", "), elapsed.as_secs()));
        if done {
            return Ok(());
        }
        if elapsed >= timeout {
            return Err(Error::WaitTimeout {
                secs: timeout.as_secs(),
                status: status.join(", "),
                fix: "look at the groups' scaling activities (aws autoscaling describe-scaling-activities) and the instances' /var/log/framework-bootstrap.log, then apply again or raise --wait-timeout".to_string(),
            });
        }
        tokio::time::sleep(poll).await;
    }
}

/// Polls until the named group no longer exists.
pub async fn until_gone(aws: &Aws, id: &ResourceId, name: &str, timeout: Duration, poll: Duration) -> Result<(), Error> {
    let start = tokio::time::Instant::now();
    loop {
        let out = aws
            .autoscaling
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(name)
            .send()
            .await
            .map_err(|e| fail(id, "autoscaling:DescribeAutoScalingGroups", e))?;
        if out.auto_scaling_groups().is_empty() {
            return Ok(());
        }
        if start.elapsed() >= timeout {
            return Err(Error::WaitTimeout {
                secs: timeout.as_secs(),
                status: format!("{id} ({name}) is still being deleted"),
                fix: "run destroy again once its instances have terminated, or raise --wait-timeout".to_string(),
            });
        }
        tokio::time::sleep(poll).await;
    }
}
