//! `framework lb`: keeps an nginx upstreams file in step with the passing instances in Consul
//! (the consul-template role). It waits on Consul with blocking queries, renders the file from a
//! template, writes it atomically, checks the whole configuration with `nginx -t` and reloads
//! nginx only when the content changed. A broken template or configuration is reported and the
//! last good file stays.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use thiserror::Error;

use crate::config::LbFlags;
use crate::consul::{Consul, ConsulConfig};

/// The template used without `--template`.
pub const DEFAULT_TEMPLATE: &str = "# Written by framework lb from Consul; do not edit.\n\
{{#services}}upstream {{name}} {\n\
{{#servers}}    server {{address}}:{{port}};\n{{/servers}}\
{{^servers}}    server 127.0.0.1:1 down;\n{{/servers}}\
}\n{{/services}}";

/// A template that cannot be rendered.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TemplateError {
    /// `{{#x}}` without `{{/x}}`.
    #[error("section '{0}' is not closed with {{{{/{0}}}}}")]
    Unclosed(String),
    /// `{{` without `}}`.
    #[error("a tag is not closed with }}}}")]
    OpenTag,
}

/// Template data: text fields and lists of nested records.
#[derive(Debug, Clone)]
pub enum Data {
    /// A text field.
    Text(String),
    /// A list (a section repeats once per item; an inverted section renders when empty).
    List(Vec<BTreeMap<String, Data>>),
}

/// Renders a small mustache-like template: `{{field}}`, `{{#list}}...{{/list}}`,
/// `{{^list}}...{{/list}}`. Fields are looked up in the innermost record first.
pub fn render(template: &str, data: &BTreeMap<String, Data>) -> Result<String, TemplateError> {
    let mut out = String::new();
    render_into(template, &[data], &mut out)?;
    Ok(out)
}

fn lookup<'a>(scopes: &[&'a BTreeMap<String, Data>], key: &str) -> Option<&'a Data> {
    scopes.iter().rev().find_map(|s| s.get(key))
}

fn render_into(template: &str, scopes: &[&BTreeMap<String, Data>], out: &mut String) -> Result<(), TemplateError> {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(TemplateError::OpenTag)?;
        let tag = after[..end].trim();
        rest = &after[end + 2..];
        if let Some(name) = tag.strip_prefix('#').or_else(|| tag.strip_prefix('^')) {
            let inverted = tag.starts_with('^');
            let close = format!("{{{{/{name}}}}}");
            let body_end = rest.find(&close).ok_or_else(|| TemplateError::Unclosed(name.to_string()))?;
            let body = &rest[..body_end];
            rest = &rest[body_end + close.len()..];
            let items: &[BTreeMap<String, Data>] = match lookup(scopes, name) {
                Some(Data::List(items)) => items,
                _ => &[],
            };
            if inverted {
                if items.is_empty() {
                    render_into(body, scopes, out)?;
                }
            } else {
                for item in items {
                    let mut inner = scopes.to_vec();
                    inner.push(item);
                    render_into(body, &inner, out)?;
                }
            }
        } else if let Some(Data::Text(t)) = lookup(scopes, tag) {
            out.push_str(t);
        }
    }
    out.push_str(rest);
    Ok(())
}

/// The template data for `services` (name → sorted `(address, port)` of passing instances).
pub fn data(services: &BTreeMap<String, Vec<(String, u32)>>) -> BTreeMap<String, Data> {
    let list = services
        .iter()
        .map(|(name, servers)| {
            let servers = servers
                .iter()
                .map(|(a, p)| {
                    BTreeMap::from([("address".to_string(), Data::Text(a.clone())), ("port".to_string(), Data::Text(p.to_string()))])
                })
                .collect();
            BTreeMap::from([("name".to_string(), Data::Text(name.clone())), ("servers".to_string(), Data::List(servers))])
        })
        .collect();
    BTreeMap::from([("services".to_string(), Data::List(list))])
}

/// Writes `content` to `path` atomically.
fn write_atomically(path: &Path, content: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

/// Runs `nginx` with `args`; the error carries its output.
async fn nginx(bin: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = tokio::process::Command::new(bin).args(args).output().await.with_context(|| format!("cannot run {bin}"))?;
    anyhow::ensure!(out.status.success(), "{bin} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    Ok(())
}

/// Reads the passing instances of every service.
async fn snapshot(consul: &Consul, tag: Option<&str>) -> anyhow::Result<BTreeMap<String, Vec<(String, u32)>>> {
    let (services, _) = consul.services(0, Duration::from_secs(1)).await?;
    let mut out = BTreeMap::new();
    for (name, tags) in services {
        if name == "consul" || tag.is_some_and(|t| !tags.iter().any(|x| x == t)) {
            continue;
        }
        let mut servers = consul.passing(&name).await?;
        servers.sort();
        out.insert(name, servers);
    }
    Ok(out)
}

/// Runs the load-balancer mode until interrupted.
pub async fn run(flags: LbFlags) -> anyhow::Result<()> {
    let template = match &flags.template {
        Some(p) => std::fs::read_to_string(p).with_context(|| format!("cannot read the template {}", p.display()))?,
        None => DEFAULT_TEMPLATE.to_string(),
    };
    let consul = Consul::new(ConsulConfig {
        url: flags.consul.clone(),
        token: flags.consul_token.clone(),
        datacenter: flags.consul_datacenter.clone(),
    });
    let conf = flags.nginx_conf.display().to_string();
    let mut index = 0;
    let mut last: Option<String> = None;
    loop {
        match consul.wait_health(index, Duration::from_secs(2)).await {
            // An index going backwards means Consul restarted: start over.
            Ok(i) => index = if i < index { 0 } else { i },
            Err(e) => {
                tracing::warn!(error = %e, "Consul is unreachable; keeping the current upstreams");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        let services = match snapshot(&consul, flags.tag.as_deref()).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read services from Consul");
                continue;
            }
        };
        let rendered = match render(&template, &data(&services)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the template is broken; the last good upstreams stay");
                continue;
            }
        };
        if last.as_ref() == Some(&rendered) {
            continue;
        }
        let previous = std::fs::read_to_string(&flags.upstreams).ok();
        if previous.as_ref() == Some(&rendered) && last.is_none() {
            last = Some(rendered);
            continue;
        }
        write_atomically(&flags.upstreams, &rendered).with_context(|| format!("cannot write {}", flags.upstreams.display()))?;
        if let Err(e) = nginx(&flags.nginx_bin, &["-t", "-q", "-c", &conf]).await {
            tracing::error!(error = %format!("{e:#}"), "nginx refused the new upstreams; the last good ones stay");
            match &previous {
                Some(p) => write_atomically(&flags.upstreams, p)?,
                None => std::fs::remove_file(&flags.upstreams).unwrap_or_default(),
            }
            last = Some(rendered);
            continue;
        }
        match nginx(&flags.nginx_bin, &["-s", "reload", "-c", &conf]).await {
            Ok(()) => tracing::info!(services = services.len(), "nginx upstreams updated and reloaded"),
            Err(e) => tracing::error!(error = %format!("{e:#}"), "nginx did not reload"),
        }
        last = Some(rendered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_template_renders_upstreams_and_placeholders() {
        let services = BTreeMap::from([
            ("web".to_string(), vec![("10.0.0.1".to_string(), 31000), ("10.0.0.2".to_string(), 31001)]),
            ("idle".to_string(), vec![]),
        ]);
        let out = render(DEFAULT_TEMPLATE, &data(&services)).unwrap();
        assert!(out.contains("upstream web {\n    server 10.0.0.1:31000;\n    server 10.0.0.2:31001;\n}\n"), "{out}");
        assert!(out.contains("upstream idle {\n    server 127.0.0.1:1 down;\n}\n"), "{out}");
    }

    #[test]
    fn broken_templates_are_errors() {
        assert_eq!(render("{{#services}}x", &data(&BTreeMap::new())), Err(TemplateError::Unclosed("services".into())));
        assert_eq!(render("{{name", &data(&BTreeMap::new())), Err(TemplateError::OpenTag));
        assert_eq!(render("plain {{unknown}} text", &data(&BTreeMap::new())).unwrap(), "plain  text");
    }
}
