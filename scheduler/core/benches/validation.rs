//! App validation: `app::parse_app` (JSON → shape checks → normalization → validation) of a
//! realistic Marathon app. Baseline in the same run: parsing the same bytes into a
//! `serde_json::Value` only.
//!
//! Run: `cargo bench -p framework-core --bench validation`. Under `cargo test` it only says how.

mod common;

use std::hint::black_box;

use framework_core::app::parse_app;
use framework_core::ids::PathId;

const APP: &str = r#"{
  "id": "/prod/shop/web",
  "cmd": null,
  "cpus": 0.5,
  "mem": 256,
  "disk": 0,
  "instances": 4,
  "container": {
    "type": "DOCKER",
    "docker": { "image": "nginx:1.25", "forcePullImage": false, "parameters": [{ "key": "label", "value": "tier=web" }] },
    "portMappings": [
      { "containerPort": 80, "hostPort": 0, "protocol": "tcp", "name": "http", "labels": { "VIP_0": "/shop/web:80" } },
      { "containerPort": 9100, "hostPort": 0, "protocol": "tcp", "name": "metrics" }
    ],
    "volumes": [{ "containerPath": "/var/cache/nginx", "hostPath": "cache", "mode": "RW" }]
  },
  "networks": [{ "mode": "container/bridge" }],
  "env": { "SHOP_ENV": "production", "REDIS_URL": "redis://redis.marathon.mesos:6379", "LOG_LEVEL": "info" },
  "labels": { "team": "shop", "HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com" },
  "constraints": [["hostname", "UNIQUE"], ["rack", "GROUP_BY", "3"], ["zone", "LIKE", "z[01]"]],
  "acceptedResourceRoles": ["*"],
  "fetch": [{ "uri": "https://example.com/config/web.tar.gz", "extract": true, "executable": false, "cache": false }],
  "healthChecks": [
    { "protocol": "MESOS_HTTP", "path": "/health", "portIndex": 0, "gracePeriodSeconds": 30, "intervalSeconds": 10, "timeoutSeconds": 5, "maxConsecutiveFailures": 3 }
  ],
  "readinessChecks": [
    { "name": "ready", "protocol": "HTTP", "path": "/ready", "portName": "http", "intervalSeconds": 5, "timeoutSeconds": 2, "httpStatusCodesForReady": [200] }
  ],
  "upgradeStrategy": { "minimumHealthCapacity": 0.75, "maximumOverCapacity": 0.25 },
  "unreachableStrategy": { "inactiveAfterSeconds": 300, "expungeAfterSeconds": 600 },
  "killSelection": "YOUNGEST_FIRST",
  "backoffSeconds": 1,
  "backoffFactor": 1.15,
  "maxLaunchDelaySeconds": 300,
  "dependencies": ["/prod/shop/db"]
}"#;

fn main() {
    if !common::wanted("validation") {
        return;
    }
    let root = PathId::root();
    let body = APP.as_bytes();
    parse_app(body, &root).expect("the bench app is valid");
    let json = common::rate(|| {
        black_box(serde_json::from_slice::<serde_json::Value>(black_box(body)).ok());
        1
    });
    let apps = common::rate(|| {
        black_box(parse_app(black_box(body), &root).ok());
        1
    });
    common::header(&format!("app::parse_app of a {}-byte Docker app (ports, checks, constraints)", body.len()));
    common::row("serde_json::Value parse (baseline)", json, "apps/s", None);
    common::row("parse + normalize + validate", apps, "apps/s", Some(("JSON parse only", json, "apps/s")));
}
