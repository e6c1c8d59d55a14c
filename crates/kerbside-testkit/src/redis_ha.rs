//! Redis set up for availability, as large sites run it, on free loopback ports with no
//! persistence: [`RedisSentinelSet`] (a primary, a replica and a Sentinel that fails over
//! to the replica within about two seconds of the primary's death) and [`RedisCluster`]
//! (three primaries sharing the 16384 slots, made with `redis-cli --cluster create`).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::daemon;
use crate::process::{self, log_tails};

/// How long a Redis process may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a Redis process gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The name the Sentinel monitors the primary under.
pub const SENTINEL_SERVICE: &str = "kerbside";

/// One redis-server process (a data node or a Sentinel) with its log.
#[derive(Debug)]
struct Node {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Node {
    /// Starts `redis-server` with `args` (after the common ones) on a free port, or on
    /// the ports `extra_ports` more free ports are given to `args`.
    fn start(
        dir: &Path,
        name: &str,
        extra_ports: usize,
        args: impl Fn(&Path, &[u16]) -> io::Result<Vec<String>>,
    ) -> io::Result<(Node, Vec<u16>)> {
        let log = dir.join(format!("{name}.log"));
        let logs = || log_tails(&[(name, &log, 4000)]);
        let (child, ports) = daemon::start_with_retries(
            1 + extra_ports,
            |ports| {
                let node_dir = dir.join(name);
                std::fs::create_dir_all(&node_dir)?;
                spawn(&node_dir, &log, args(&node_dir, ports)?)
            },
            |child, ports| daemon::wait_listening(child, name, &ports[..1], START_TIMEOUT, &logs),
            |child| process::terminate(child, STOP_GRACE),
        )?;
        let node = Node {
            child: Some(child),
            port: ports[0],
            log,
        };
        Ok((node, ports))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process::terminate(&mut child, STOP_GRACE);
        }
    }
}

fn spawn(dir: &Path, log: &Path, args: Vec<String>) -> io::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut cmd = Command::new("redis-server");
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out);
    cmd.spawn().map_err(|e| process::spawn_error(&cmd, e))
}

/// The options every data node gets: loopback only, no persistence, its own directory.
fn data_node(dir: &Path, port: u16) -> Vec<String> {
    [
        "--bind",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.to_string_lossy(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `redis-cli -p PORT ARGS...`, its standard output; an error names the command.
fn cli(port: u16, args: &[&str]) -> io::Result<String> {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args);
    let output = process::output_of(&mut cmd, None)?;
    if !output.status.success() {
        return Err(process::failure(&cmd, &output, "redis-cli"));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Checks the tools and makes the temporary directory `kerbside-redis-KIND-*`.
fn prepare(kind: &str) -> io::Result<TempDir> {
    crate::check_tools(&[
        ("redis-server", "redis-server"),
        ("redis-cli", "redis-tools"),
    ])?;
    tempfile::Builder::new()
        .prefix(&format!("kerbside-redis-{kind}-"))
        .tempdir()
}

/// Polls `check` every 50 ms until it holds or `timeout` passes.
fn wait_for(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            return Err(io::Error::other(format!("{what} within {timeout:?}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A primary, its replica and one Sentinel watching them. Dropping it stops all three.
#[derive(Debug)]
pub struct RedisSentinelSet {
    primary: Node,
    replica: Node,
    sentinel: Node,
    dir: TempDir,
}

impl RedisSentinelSet {
    /// Starts the three and waits until the Sentinel knows the replica (so it can fail
    /// over to it).
    pub fn start() -> io::Result<Self> {
        let dir = prepare("sentinel")?;
        let (primary, _) = Node::start(dir.path(), "primary", 0, |d, p| Ok(data_node(d, p[0])))?;
        let primary_port = primary.port;
        let (replica, _) = Node::start(dir.path(), "replica", 0, |d, p| {
            let mut args = data_node(d, p[0]);
            args.extend([
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary_port.to_string(),
            ]);
            Ok(args)
        })?;
        let (sentinel, _) = Node::start(dir.path(), "sentinel", 0, |d, p| {
            // A Sentinel rewrites its configuration file: it must be its own and writable.
            let conf = d.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "bind 127.0.0.1\nport {port}\ndir {dir}\n\
                     sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {primary_port} 1\n\
                     sentinel down-after-milliseconds {SENTINEL_SERVICE} 500\n\
                     sentinel failover-timeout {SENTINEL_SERVICE} 5000\n\
                     sentinel parallel-syncs {SENTINEL_SERVICE} 1\n",
                    port = p[0],
                    dir = d.display(),
                ),
            )?;
            Ok(vec![
                conf.to_string_lossy().into_owned(),
                "--sentinel".into(),
            ])
        })?;
        let set = RedisSentinelSet {
            primary,
            replica,
            sentinel,
            dir,
        };
        wait_for(
            START_TIMEOUT,
            "the Sentinel did not see the replica",
            || {
                cli(
                    set.sentinel.port,
                    &["SENTINEL", "replicas", SENTINEL_SERVICE],
                )
                .is_ok_and(|out| out.contains(&set.replica.port.to_string()))
            },
        )
        .map_err(|e| io::Error::other(format!("{e}\n{}", set.logs())))?;
        Ok(set)
    }

    /// `redis+sentinel://127.0.0.1:SENTINEL/kerbside/0`, as the gate's `replay-cache`.
    pub fn url(&self) -> String {
        format!(
            "redis+sentinel://127.0.0.1:{}/{SENTINEL_SERVICE}/0",
            self.sentinel.port
        )
    }

    /// The port of the node the Sentinel names as primary now.
    pub fn primary_port(&self) -> io::Result<u16> {
        let out = cli(
            self.sentinel.port,
            &["SENTINEL", "get-master-addr-by-name", SENTINEL_SERVICE],
        )?;
        out.lines()
            .nth(1)
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("the Sentinel answered {out:?}")))
    }

    /// The ports of the first primary and of its replica.
    pub fn ports(&self) -> (u16, u16) {
        (self.primary.port, self.replica.port)
    }

    /// Waits until the replica holds as many keys as the primary (replication is
    /// asynchronous: a claim made just before the primary dies may not have reached it).
    pub fn wait_replicated(&self) -> io::Result<()> {
        let keys = |port| cli(port, &["DBSIZE"]).map(|n| n.trim().to_owned());
        wait_for(
            Duration::from_secs(10),
            "the replica did not catch up with the primary",
            || matches!((keys(self.primary.port), keys(self.replica.port)), (Ok(p), Ok(r)) if p == r),
        )
    }

    /// Kills the primary (SIGKILL) and waits until the Sentinel has promoted the replica
    /// and the replica answers as a primary; returns how long that took.
    pub fn fail_over(&mut self) -> io::Result<Duration> {
        let start = Instant::now();
        self.primary.kill();
        let replica = self.replica.port;
        wait_for(
            Duration::from_secs(30),
            "the Sentinel did not promote the replica",
            || self.primary_port().is_ok_and(|p| p == replica),
        )
        .map_err(|e| io::Error::other(format!("{e}\n{}", self.logs())))?;
        wait_for(
            Duration::from_secs(10),
            "the promoted replica did not answer as a primary",
            || cli(replica, &["ROLE"]).is_ok_and(|role| role.starts_with("master")),
        )?;
        Ok(start.elapsed())
    }

    /// Stops the Sentinel (SIGTERM), so nothing can say which node is the primary.
    pub fn stop_sentinel(&mut self) {
        self.sentinel.stop();
    }

    /// The three logs' tails, for failure messages.
    pub fn logs(&self) -> String {
        log_tails(&[
            ("primary", &self.primary.log, 2000),
            ("replica", &self.replica.log, 2000),
            ("sentinel", &self.sentinel.log, 3000),
        ])
    }

    /// The directory the three run in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisSentinelSet {
    fn drop(&mut self) {
        self.sentinel.stop();
        self.replica.stop();
        self.primary.stop();
    }
}

/// A Redis Cluster of three primaries (no replicas). Dropping it stops them.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Node>,
    dir: TempDir,
}

impl RedisCluster {
    /// Starts three nodes with cluster mode on (each with its own bus port), joins them
    /// with `redis-cli --cluster create` and waits until every node says `cluster_state:ok`.
    pub fn start() -> io::Result<Self> {
        let dir = prepare("cluster")?;
        let mut nodes = Vec::new();
        for i in 0..3 {
            let (node, _) = Node::start(dir.path(), &format!("node{i}"), 1, |d, p| {
                let mut args = data_node(d, p[0]);
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        &d.join("nodes.conf").to_string_lossy(),
                        "--cluster-port",
                        &p[1].to_string(),
                        "--cluster-node-timeout",
                        "2000",
                    ]
                    .map(str::to_owned),
                );
                Ok(args)
            })?;
            nodes.push(node);
        }
        let cluster = RedisCluster { nodes, dir };
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let mut create = vec!["--cluster", "create"];
        create.extend(addresses.iter().map(String::as_str));
        create.extend(["--cluster-replicas", "0", "--cluster-yes"]);
        cli(cluster.nodes[0].port, &create)
            .map_err(|e| io::Error::other(format!("{e}\n{}", cluster.logs())))?;
        for node in &cluster.nodes {
            wait_for(START_TIMEOUT, "the cluster did not become ok", || {
                cli(node.port, &["CLUSTER", "INFO"]).is_ok_and(|i| i.contains("cluster_state:ok"))
            })
            .map_err(|e| io::Error::other(format!("{e}\n{}", cluster.logs())))?;
        }
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:FIRST` (one node: the gate finds the others).
    pub fn url(&self) -> String {
        format!("redis+cluster://127.0.0.1:{}", self.nodes[0].port)
    }

    /// How many keys each node holds (`DBSIZE`), in node order.
    pub fn key_counts(&self) -> io::Result<Vec<u64>> {
        self.nodes
            .iter()
            .map(|n| {
                let out = cli(n.port, &["DBSIZE"])?;
                out.trim()
                    .parse()
                    .map_err(|_| io::Error::other(format!("DBSIZE answered {out:?}")))
            })
            .collect()
    }

    /// The nodes' logs' tails, for failure messages.
    pub fn logs(&self) -> String {
        let labels: Vec<String> = (0..self.nodes.len()).map(|i| format!("node{i}")).collect();
        let logs: Vec<(&str, &Path, usize)> = self
            .nodes
            .iter()
            .zip(&labels)
            .map(|(n, l)| (l.as_str(), n.log.as_path(), 2000))
            .collect();
        log_tails(&logs)
    }

    /// The directory the nodes run in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
    }
}
