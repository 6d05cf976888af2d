//! The agent ⇄ controller protocol over real HTTP on loopback: authentication, limits,
//! error statuses naming the field, clean shutdown, and a fuzz of random bodies.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mpda::live::protocol::{
    ExecutorProgress, Goodbye, Hello, JobProgress, JobStatus, Message, Outcome, PROTOCOL_VERSION,
    Progress, Reply, StageProgress, StageStatus,
};
use mpda::live::server::{
    ControlServer, Handler, Secret, ServerError, ServerOptions, default_bind,
};
use proptest::prelude::*;

/// Records every message it is handed and answers with a fixed reply.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Message>>>,
}

impl Recorder {
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Handler for Recorder {
    fn handle(&mut self, msg: Message) -> Reply {
        let target = match &msg {
            Message::Hello(_) => Some(2),
            Message::Progress(p) => Some(p.executors.len() as u32 + 1),
            Message::Goodbye(_) => Some(0),
        };
        self.seen.lock().unwrap().push(msg);
        Reply {
            target_executors: target,
            kill: vec!["1".into()],
        }
    }
}

struct Fixture {
    server: ControlServer,
    secret: Secret,
    rec: Recorder,
    agent: ureq::Agent,
}

fn start(options: ServerOptions) -> Fixture {
    let secret = Secret::generate().unwrap();
    let rec = Recorder::default();
    let server =
        ControlServer::start_with(default_bind(), secret.clone(), rec.clone(), options).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    Fixture {
        server,
        secret,
        rec,
        agent,
    }
}

impl Fixture {
    /// POSTs `body` to `path` with `auth` as the Authorization header; (status, body).
    fn post(&self, path: &str, auth: Option<&str>, body: &[u8]) -> (u16, String) {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.server.url()))
            .header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let mut resp = req.send(body).unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    }

    fn post_ok(&self, path: &str, body: &[u8]) -> (u16, String) {
        self.post(path, Some(&self.secret.bearer()), body)
    }
}

fn hello() -> Hello {
    Hello {
        version: PROTOCOL_VERSION,
        app_id: "app-20261127151000-0003".into(),
        job_name: "q9-2g".into(),
        pid: 4242,
    }
}

fn progress() -> Progress {
    Progress {
        version: PROTOCOL_VERSION,
        app_id: "app-20261127151000-0003".into(),
        time_ms: 1_764_256_000_000,
        jobs: vec![JobProgress {
            job_id: 0,
            status: JobStatus::Running,
            stage_ids: vec![0, 1, 2, 3],
        }],
        stages: (0..4)
            .map(|s| StageProgress {
                stage_id: s,
                attempt: 0,
                job_ids: vec![0],
                num_tasks: 10,
                active: 2,
                complete: 5,
                failed: 0,
                status: StageStatus::Active,
            })
            .collect(),
        executors: vec![
            ExecutorProgress {
                id: "0".into(),
                host: "127.0.0.1".into(),
                cores: 1,
                active: 1,
            },
            ExecutorProgress {
                id: "1".into(),
                host: "127.0.0.1".into(),
                cores: 1,
                active: 0,
            },
        ],
    }
}

fn goodbye() -> Goodbye {
    Goodbye {
        version: PROTOCOL_VERSION,
        app_id: "app-20261127151000-0003".into(),
        outcome: Outcome::Succeeded,
    }
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn error_field(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    v["field"].as_str().map(str::to_string)
}

#[test]
fn authenticated_messages_reach_the_handler_and_get_its_reply() {
    let f = start(ServerOptions::default());
    let (s, body) = f.post_ok("/v1/hello", &json(&hello()));
    assert_eq!(s, 200, "{body}");
    let reply: Reply = serde_json::from_str(&body).unwrap();
    assert_eq!(
        reply,
        Reply {
            target_executors: Some(2),
            kill: vec!["1".into()]
        }
    );
    let (s, body) = f.post_ok("/v1/progress", &json(&progress()));
    assert_eq!(s, 200, "{body}");
    let reply: Reply = serde_json::from_str(&body).unwrap();
    assert_eq!(reply.target_executors, Some(3));
    let (s, _) = f.post_ok("/v1/goodbye", &json(&goodbye()));
    assert_eq!(s, 200);

    let seen = f.rec.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            Message::Hello(hello()),
            Message::Progress(progress()),
            Message::Goodbye(goodbye())
        ]
    );
}

#[test]
fn no_token_or_a_wrong_token_is_refused_and_changes_nothing() {
    let f = start(ServerOptions::default());
    let other = Secret::generate().unwrap();
    let wrong_auths: [Option<String>; 6] = [
        None,
        Some(other.bearer()),
        Some(f.secret.expose_hex().to_string()), // no "Bearer "
        Some(format!("Bearer {}x", f.secret.expose_hex())),
        Some(format!("Bearer {}", &f.secret.expose_hex()[..63])),
        Some(format!("bearer {}", f.secret.expose_hex())),
    ];
    for auth in &wrong_auths {
        for path in ["/v1/hello", "/v1/progress", "/v1/goodbye", "/nowhere"] {
            let (s, body) = f.post(path, auth.as_deref(), &json(&hello()));
            assert_eq!(s, 401, "{path} with {auth:?}: {body}");
        }
    }
    assert_eq!(
        f.rec.count(),
        0,
        "the handler saw an unauthenticated message"
    );
    // The right token still works afterwards.
    assert_eq!(f.post_ok("/v1/hello", &json(&hello())).0, 200);
    assert_eq!(f.rec.count(), 1);
}

#[test]
fn oversize_bodies_get_413() {
    let f = start(ServerOptions {
        max_body_bytes: 4096,
        ..ServerOptions::default()
    });
    let mut big = progress();
    big.stages = (0..200)
        .map(|s| StageProgress {
            stage_id: s,
            ..big.stages[0].clone()
        })
        .collect();
    let body = json(&big);
    assert!(body.len() > 4096);
    let (s, resp) = f.post_ok("/v1/progress", &body);
    assert_eq!(s, 413, "{resp}");

    // A declared length far beyond memory is refused from the header alone, and a chunked
    // body with no declared length is cut at the limit; the server lives on.
    let addr = f.server.addr();
    let huge = format!(
        "POST /v1/progress HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Content-Length: 1000000000000000\r\n\r\n{{",
        f.secret.bearer()
    );
    assert!(raw(addr, huge.as_bytes()).starts_with("HTTP/1.1 413"));
    let mut chunked = format!(
        "POST /v1/progress HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        f.secret.bearer()
    )
    .into_bytes();
    for _ in 0..3 {
        chunked.extend_from_slice(b"800\r\n");
        chunked.extend_from_slice(&[b' '; 0x800]);
        chunked.extend_from_slice(b"\r\n");
    }
    assert!(raw(addr, &chunked).starts_with("HTTP/1.1 413"));
    assert_eq!(f.rec.count(), 0);
    assert_eq!(f.post_ok("/v1/hello", &json(&hello())).0, 200);
}

/// Sends raw bytes, half-closes, and returns what the server answered.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Read until the server closes or a full response head has come.
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn malformed_json_and_out_of_range_fields_get_400_naming_the_field() {
    let f = start(ServerOptions::default());

    let (s, body) = f.post_ok("/v1/progress", b"{\"version\": 1, ");
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("\"error\":\"malformed\""), "{body}");

    // A wrong type deep inside names its path.
    let mut v = serde_json::to_value(progress()).unwrap();
    v["stages"][2]["num_tasks"] = serde_json::json!("ten");
    let (s, body) = f.post_ok("/v1/progress", &serde_json::to_vec(&v).unwrap());
    assert_eq!(s, 400, "{body}");
    assert_eq!(error_field(&body).as_deref(), Some("stages[2].num_tasks"));

    // An unknown field is refused.
    let mut v = serde_json::to_value(hello()).unwrap();
    v["steer"] = serde_json::json!(true);
    let (s, body) = f.post_ok("/v1/hello", &serde_json::to_vec(&v).unwrap());
    assert_eq!(s, 400, "{body}");

    // Trailing garbage after a valid object is refused.
    let mut b = json(&hello());
    b.extend_from_slice(b" {}");
    assert_eq!(f.post_ok("/v1/hello", &b).0, 400);

    // Parses, but breaks a rule: named by validate().
    let mut p = progress();
    p.stages[3].complete = 12;
    let (s, body) = f.post_ok("/v1/progress", &json(&p));
    assert_eq!(s, 400, "{body}");
    assert_eq!(error_field(&body).as_deref(), Some("stages[3].complete"));
    assert!(body.contains("must be <= num_tasks"), "{body}");

    let mut h = hello();
    h.version = 99;
    let (s, body) = f.post_ok("/v1/hello", &json(&h));
    assert_eq!((s, error_field(&body).as_deref()), (400, Some("version")));

    assert_eq!(f.rec.count(), 0);
}

#[test]
fn unknown_paths_and_methods_get_404_and_405() {
    let f = start(ServerOptions::default());
    assert_eq!(f.post_ok("/v1/steer", &json(&hello())).0, 404);
    assert_eq!(f.post_ok("/", b"").0, 404);
    let resp = f
        .agent
        .get(format!("{}/v1/hello", f.server.url()))
        .header("authorization", &f.secret.bearer())
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    assert_eq!(f.rec.count(), 0);
}

#[test]
fn a_non_loopback_bind_is_refused_without_allow_remote() {
    let secret = Secret::generate().unwrap();
    for addr in ["0.0.0.0:0", "[::]:0", "192.0.2.1:0"] {
        let addr: SocketAddr = addr.parse().unwrap();
        match ControlServer::start(addr, secret.clone(), Recorder::default()) {
            Err(ServerError::NonLoopback { addr: a }) => assert_eq!(a, addr),
            Err(e) => panic!("{addr}: wrong error {e}"),
            Ok(_) => panic!("{addr}: a non-loopback bind was accepted"),
        }
    }
    // Allowed on purpose, it binds (the wildcard address exists on every machine).
    let s = ControlServer::start_with(
        "0.0.0.0:0".parse().unwrap(),
        secret,
        Recorder::default(),
        ServerOptions {
            allow_remote: true,
            ..ServerOptions::default()
        },
    )
    .unwrap();
    s.stop();
}

#[test]
fn stop_returns_promptly_even_with_clients_connected() {
    let f = start(ServerOptions::default());
    let addr = f.server.addr();
    assert_eq!(f.post_ok("/v1/hello", &json(&hello())).0, 200);
    // A client that sent half a request head, and one that sent a head and half a body.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"POST /v1/hello HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut slow = TcpStream::connect(addr).unwrap();
    write!(
        slow,
        "POST /v1/hello HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 100\r\n\r\n{{",
        f.secret.bearer()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    f.server.stop();
    let took = t.elapsed();
    assert!(took < Duration::from_secs(2), "stop() took {took:?}");
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
    struct Flaky(u32);
    impl Handler for Flaky {
        fn handle(&mut self, _: Message) -> Reply {
            self.0 += 1;
            if self.0 == 1 {
                panic!("deliberate panic in a test handler");
            }
            Reply::default()
        }
    }
    let secret = Secret::generate().unwrap();
    let server = ControlServer::start(default_bind(), secret.clone(), Flaky(0)).unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let post = || {
        agent
            .post(format!("{}/v1/hello", server.url()))
            .header("authorization", &secret.bearer())
            .send(&json(&hello())[..])
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(post(), 500);
    assert_eq!(post(), 200);
    server.stop();
}

#[test]
fn the_secret_file_round_trips_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/secret");
    let s = Secret::generate().unwrap();
    s.write_to(&path).unwrap();
    let back = Secret::read_from(&path).unwrap();
    assert_eq!(back.expose_hex(), s.expose_hex());
    assert_eq!(s.expose_hex().len(), 64);
    assert!(!format!("{s:?}").contains(s.expose_hex()));
    assert_ne!(Secret::generate().unwrap().expose_hex(), s.expose_hex());
    std::fs::write(&path, "not hex\n").unwrap();
    let e = Secret::read_from(&path).unwrap_err().to_string();
    assert!(
        e.contains("secret") && e.contains(&path.display().to_string()),
        "{e}"
    );
}

/// Bodies that are random bytes, random JSON-looking text, or a valid message with one
/// number replaced by a random one.
fn body_strategy() -> impl Strategy<Value = (usize, Vec<u8>)> {
    let paths = 0..3usize;
    let bytes = prop::collection::vec(any::<u8>(), 0..300);
    let text = "[{}\\[\\]\":,0-9a-z_ .-]{0,200}".prop_map(String::into_bytes);
    let mutated = (0..8usize, any::<i64>()).prop_map(|(which, n)| {
        let mut v = serde_json::to_value(progress()).unwrap();
        let slot = match which {
            0 => &mut v["version"],
            1 => &mut v["time_ms"],
            2 => &mut v["stages"][1]["num_tasks"],
            3 => &mut v["stages"][1]["complete"],
            4 => &mut v["stages"][0]["job_ids"][0],
            5 => &mut v["executors"][0]["cores"],
            6 => &mut v["jobs"][0]["job_id"],
            _ => &mut v["stages"][2]["active"],
        };
        // Small numbers often, so that some mutants stay valid.
        *slot = serde_json::json!(if n % 3 == 0 { n } else { n.rem_euclid(12) });
        serde_json::to_vec(&v).unwrap()
    });
    (paths, prop_oneof![bytes, text, mutated])
}

/// What the server must do with `body` on `path`: reach the handler iff it parses and
/// validates.
fn is_valid(path: usize, body: &[u8]) -> bool {
    fn ok<T: serde::de::DeserializeOwned>(b: &[u8], check: impl Fn(&T) -> bool) -> bool {
        serde_json::from_slice::<T>(b).is_ok_and(|m| check(&m))
    }
    match path {
        0 => ok::<Hello>(body, |m| m.validate().is_ok()),
        1 => ok::<Progress>(body, |m| m.validate().is_ok()),
        _ => ok::<Goodbye>(body, |m| m.validate().is_ok()),
    }
}

#[test]
fn fuzz_random_bodies_never_break_the_server_nor_reach_the_handler_unless_valid() {
    let f = start(ServerOptions::default());
    let paths = ["/v1/hello", "/v1/progress", "/v1/goodbye"];
    let mut valid_seen = 0usize;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&body_strategy(), |(path, body)| {
            let before = f.rec.count();
            let (s, resp) = f.post_ok(paths[path], &body);
            let valid = is_valid(path, &body);
            prop_assert_eq!(s, if valid { 200 } else { 400 }, "{}", resp);
            prop_assert_eq!(f.rec.count(), before + usize::from(valid));
            Ok(())
        })
        .unwrap();
    valid_seen += f.rec.count();
    // The generator must reach both sides, or the test proves little.
    assert!(valid_seen > 0, "no valid body was generated");
    // The server is still up.
    assert_eq!(f.post_ok("/v1/hello", &json(&hello())).0, 200);
}

/// The Python agent (scripts/spark/mpda_agent.py, with the fake SparkContext of its own unit
/// tests) against this server: its messages must pass the Rust side's parsing and checks.
#[test]
fn the_python_agent_speaks_the_protocol() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if std::process::Command::new(&python)
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED the_python_agent_speaks_the_protocol: {python} not found");
        return;
    }
    let f = start(ServerOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    f.secret.write_to(&secret_file).unwrap();
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/spark");
    let program = r#"
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
import mpda_agent, test_mpda_agent as t
sc = t.FakeSc()
env = {"MPDA_CONTROLLER_URL": sys.argv[2], "MPDA_SECRET_FILE": sys.argv[3]}
a = mpda_agent.Agent(sc, env["MPDA_CONTROLLER_URL"],
                     mpda_agent.read_secret(env["MPDA_SECRET_FILE"]), "q9-2g",
                     fetch_executors=lambda: mpda_agent.executors_from_rest(t.REST_EXECUTORS))
a.step(); a.step(); a.stop("succeeded")
print(sc._jvm.calls)
assert not a._down and not a._warned, (a._down, a._warned)
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", program, scripts, &f.server.url()])
        .arg(&secret_file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "agent failed:\n{stdout}\n{stderr}");
    let seen = f.rec.seen.lock().unwrap().clone();
    let kinds: Vec<&str> = seen
        .iter()
        .map(|m| match m {
            Message::Hello(_) => "hello",
            Message::Progress(_) => "progress",
            Message::Goodbye(_) => "goodbye",
        })
        .collect();
    assert_eq!(
        kinds,
        ["hello", "progress", "progress", "goodbye"],
        "{stderr}"
    );
    let Message::Progress(p) = &seen[1] else {
        unreachable!()
    };
    assert_eq!(p.stages.len(), 5);
    // The REST API lists executors "0" and "1"; the reply to Hello killed "1", which the
    // agent then leaves out of its reports (Spark goes on listing a killed executor for a
    // few seconds, but it takes no more tasks).
    let ids: Vec<&str> = p.executors.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["0"], "{stderr}");
    // The recorder's replies (kill "1", then targets) reached the fake JVM.
    assert!(stdout.contains("killExecutors"), "{stdout}");
    assert!(stdout.contains("requestTotalExecutors"), "{stdout}");
}

/// The agent's own Python unit tests (scripts/spark/test_mpda_agent.py), run here so that
/// `cargo test` covers them.
#[test]
fn the_python_agent_unit_tests_pass() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/spark");
    let out = match std::process::Command::new(&python)
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            scripts,
            "-p",
            "test_*.py",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            println!("SKIPPED the_python_agent_unit_tests_pass: cannot run {python}: {e}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("OK"), "{stderr}");
}
