//! The system as deployed, in the emulator: both state machines created from the ASL files
//! in their own accounts, their Lambda tasks served by two `cargo lambda watch` processes
//! (one per account, each with that account's credentials), a failure topic per account
//! with an SQS queue subscribed to read what it sends.

#![allow(clippy::missing_panics_doc)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use snapcourier_aws::deployed::put_deployed_run;
use snapcourier_aws::executions::{self, ExecutionState};
use snapcourier_aws::{AwsContext, ClientOptions};
use snapcourier_core::deployed::{DEPLOYED_RUNS_ENV, parameter_prefix};
use snapcourier_core::heartbeat::Side as HeartbeatSide;
pub use snapcourier_emulator::{
    DESTINATION_ACCOUNT, DESTINATION_REGION, Emulator, SOURCE_ACCOUNT, SOURCE_REGION, Seed, Side,
    repo_root,
};

/// (placeholder, binary) per side.
const SOURCE_FUNCTIONS: [(&str, &str); 3] = [
    ("TakeFunctionArn", "take"),
    ("ShareFunctionArn", "share"),
    ("DeleteFunctionArn", "delete"),
];
const DESTINATION_FUNCTIONS: [(&str, &str); 3] = [
    ("CopyInDestinationFunctionArn", "copy_in_destination"),
    ("CrossRegionCopyFunctionArn", "cross_region_copy"),
    ("DeleteFunctionArn", "delete"),
];

pub struct Deployment {
    pub emu: Emulator,
    watchers: Vec<Child>,
    /// Each side's function output (`cargo lambda watch` stdout and stderr).
    logs: [PathBuf; 2],
    pub source: SideDeployment,
    pub destination: SideDeployment,
    /// The destination's drill state machine (statemachine/drill.asl.json), reporting to the
    /// destination's failure topic.
    pub drill: String,
}

pub struct SideDeployment {
    pub side: Side,
    pub state_machine: String,
    pub topic: String,
    pub queue_url: String,
}

fn account(side: Side) -> &'static str {
    match side {
        Side::Source => SOURCE_ACCOUNT,
        Side::Destination => DESTINATION_ACCOUNT,
    }
}

fn function_arn(side: Side, binary: &str) -> String {
    let name = match side {
        Side::Source => format!("snapcourier-source-{}", binary.replace('_', "-")),
        Side::Destination => format!("snapcourier-destination-{}", binary.replace('_', "-")),
    };
    format!(
        "arn:aws:lambda:{SOURCE_REGION}:{}:function:{name}",
        account(side)
    )
}

/// Where the deployment keeps each side's deployed runs (the stacks use the namespace; one
/// emulated deployment serves every config of a test, so it uses one fixed prefix).
pub fn deployed_runs(side: Side) -> String {
    parameter_prefix(
        "e2e",
        match side {
            Side::Source => HeartbeatSide::Source,
            Side::Destination => HeartbeatSide::Destination,
        },
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cargo lambda watch` serving every binary of crates/lambdas with one account's credentials.
fn watch(emu: &Emulator, side: Side, port: u16, max_attempts: u32) -> (Child, PathBuf) {
    let creds = emu.credentials(side);
    let root = repo_root();
    let path = format!(
        "{}:{}",
        root.join(".venv/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let logs = root.join("target/e2e-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let log_path = logs.join(format!("watch-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut command = Command::new("cargo");
    command
        .args([
            "lambda",
            "watch",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
            "--ignore-changes",
            "--concurrency",
            "4",
        ])
        .current_dir(root.join("crates/lambdas"))
        .env("PATH", path)
        .env("AWS_ACCESS_KEY_ID", &creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &creds.secret_access_key)
        .env("AWS_ENDPOINT_URL", emu.endpoint())
        .env("AWS_REGION", SOURCE_REGION)
        .env(
            "RUST_LOG",
            "warn,snapcourier_aws=info,snapcourier_lambdas=info",
        )
        .env("SNAPCOURIER_MAX_ATTEMPTS", max_attempts.to_string())
        .env(DEPLOYED_RUNS_ENV, deployed_runs(side))
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // Its own process group, so that dropping the deployment stops the functions it started.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command
        .spawn()
        .expect("cargo lambda watch (make setup installs cargo-lambda)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "cargo lambda watch did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (child, log_path)
}

fn definition(file: &str, substitutions: &[(String, String)]) -> String {
    let path: PathBuf = repo_root().join(format!("statemachine/{file}.asl.json"));
    let mut text = std::fs::read_to_string(path).unwrap();
    for (name, value) in substitutions {
        text = text.replace(&format!("${{{name}}}"), value);
    }
    text
}

async fn deploy(
    emu: &Emulator,
    side: Side,
    file: &str,
    functions: &[(&str, &str)],
) -> SideDeployment {
    let sdk = emu.sdk_config(side);
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name("snapcourier-failures")
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let queue_url = sqs
        .create_queue()
        .queue_name("failure-reports")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn =
        attributes.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .unwrap();
    let mut substitutions: Vec<(String, String)> = functions
        .iter()
        .map(|(placeholder, binary)| (placeholder.to_string(), function_arn(side, binary)))
        .collect();
    substitutions.push(("FailureTopicArn".into(), topic.clone()));
    let state_machine = sfn
        .create_state_machine()
        .name(format!("snapcourier-{file}"))
        .definition(definition(file, &substitutions))
        .role_arn(format!(
            "arn:aws:iam::{}:role/snapcourier-{file}",
            account(side)
        ))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    SideDeployment {
        side,
        state_machine,
        topic,
        queue_url,
    }
}

/// The drill state machine in the destination account, as the DestinationStack makes it.
async fn drill_state_machine(emu: &Emulator, topic: &str) -> String {
    let substitutions = [
        (
            "DrillFunctionArn".to_string(),
            function_arn(Side::Destination, "drill"),
        ),
        ("FailureTopicArn".to_string(), topic.to_string()),
    ];
    aws_sdk_sfn::Client::new(&emu.sdk_config(Side::Destination))
        .create_state_machine()
        .name("snapcourier-drill")
        .definition(definition("drill", &substitutions))
        .role_arn(format!(
            "arn:aws:iam::{DESTINATION_ACCOUNT}:role/snapcourier-drill"
        ))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string()
}

impl Deployment {
    pub async fn start(seed: Seed) -> Deployment {
        Deployment::with_attempts(seed, 5).await
    }

    /// The functions give up an AWS call after `max_attempts` (SNAPCOURIER_MAX_ATTEMPTS), so
    /// that injected faults reach the state machine's Retry.
    pub async fn with_attempts(seed: Seed, max_attempts: u32) -> Deployment {
        let emu = Emulator::start(seed);
        let (source_port, destination_port) = (free_port(), free_port());
        let (source_watch, source_log) = watch(&emu, Side::Source, source_port, max_attempts);
        let (destination_watch, destination_log) =
            watch(&emu, Side::Destination, destination_port, max_attempts);
        let watchers = vec![source_watch, destination_watch];
        let mut routes = json!({});
        for (side, port, functions) in [
            (Side::Source, source_port, SOURCE_FUNCTIONS),
            (Side::Destination, destination_port, DESTINATION_FUNCTIONS),
        ] {
            for (_, binary) in functions {
                routes[function_arn(side, binary)] = json!({"url": format!("http://127.0.0.1:{port}"), "binary": binary, "timeout": 600});
            }
        }
        routes[function_arn(Side::Destination, "drill")] = json!({"url": format!("http://127.0.0.1:{destination_port}"), "binary": "drill", "timeout": 600});
        emu.route_lambdas(&routes);
        let source = deploy(&emu, Side::Source, "source", &SOURCE_FUNCTIONS).await;
        let destination = deploy(
            &emu,
            Side::Destination,
            "destination",
            &DESTINATION_FUNCTIONS,
        )
        .await;
        let drill = drill_state_machine(&emu, &destination.topic).await;
        Deployment {
            emu,
            watchers,
            logs: [source_log, destination_log],
            source,
            destination,
            drill,
        }
    }

    pub fn side(&self, side: Side) -> &SideDeployment {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }

    /// The CloudWatch embedded-metric-format records one side's functions wrote so far: the
    /// JSON lines of their output that carry an `_aws` member, as CloudWatch Logs would see
    /// them.
    pub fn metric_records(&self, side: Side) -> Vec<Value> {
        let path = match side {
            Side::Source => &self.logs[0],
            Side::Destination => &self.logs[1],
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.find('{').map(|at| &line[at..]))
            .filter_map(|json| serde_json::from_str::<Value>(json).ok())
            .filter(|record| record.get("_aws").is_some())
            .collect()
    }

    pub fn context(&self, side: Side) -> AwsContext {
        AwsContext::new(&self.emu.sdk_config(side), ClientOptions::default())
    }

    /// Deploy `input` as its schedule's run (what the stack does for each schedule), start
    /// an execution with it and return its ARN.
    pub async fn start_execution(&self, side: Side, name: &str, input: &Value) -> String {
        self.deploy_run(side, input).await;
        self.start_undeployed_execution(side, name, input).await
    }

    /// Write `input` as the deployed run of its schedule, as the stack does.
    pub async fn deploy_run(&self, side: Side, input: &Value) {
        let schedule = input["schedule"]["name"]
            .as_str()
            .expect("a run input names its schedule");
        put_deployed_run(&self.context(side), &deployed_runs(side), schedule, input)
            .await
            .unwrap();
    }

    /// Start an execution with `input` as it is, deployed or not (a run started by hand).
    pub async fn start_undeployed_execution(
        &self,
        side: Side,
        name: &str,
        input: &Value,
    ) -> String {
        executions::start_execution(
            &self.context(side),
            &self.side(side).state_machine,
            name,
            input,
        )
        .await
        .unwrap()
    }

    /// Deploy `run` as the destination's drill run (what the stack does) and start a drill
    /// execution with it; its ARN.
    pub async fn start_drill(&self, name: &str, run: &Value) -> String {
        put_deployed_run(
            &self.context(Side::Destination),
            &deployed_runs(Side::Destination),
            snapcourier_core::drill::DRILL_RUN_NAME,
            run,
        )
        .await
        .unwrap();
        executions::start_execution(&self.context(Side::Destination), &self.drill, name, run)
            .await
            .unwrap()
    }

    /// Wait until an execution ends (at most `limit`).
    pub async fn wait(&self, side: Side, arn: &str, limit: Duration) -> ExecutionState {
        let ctx = self.context(side);
        let deadline = Instant::now() + limit;
        loop {
            if executions::status(&ctx, arn).await.unwrap() != "RUNNING" {
                return executions::look_at_execution(&ctx, arn).await.unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "{arn} still running after {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn run(&self, side: Side, name: &str, input: &Value) -> ExecutionState {
        let arn = self.start_execution(side, name, input).await;
        self.wait(side, &arn, Duration::from_secs(600)).await
    }

    /// The execution's history events, as the SDK gives them.
    pub async fn history(&self, side: Side, arn: &str) -> Vec<aws_sdk_sfn::types::HistoryEvent> {
        aws_sdk_sfn::Client::new(&self.emu.sdk_config(side))
            .get_execution_history()
            .execution_arn(arn)
            .send()
            .await
            .unwrap()
            .events()
            .to_vec()
    }

    /// Every message the side's failure topic delivered to its queue so far, as SNS wraps
    /// it (`Subject`, `Message`).
    pub async fn failure_reports(&self, side: Side) -> Vec<Value> {
        let sqs = aws_sdk_sqs::Client::new(&self.emu.sdk_config(side));
        let out = sqs
            .receive_message()
            .queue_url(&self.side(side).queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        out.messages()
            .iter()
            .filter_map(|m| serde_json::from_str(m.body()?).ok())
            .collect()
    }
}

/// The largest state an execution held, in bytes: every state's input and output as the
/// history records them (Step Functions allows 256 KiB).
pub fn largest_state_bytes(events: &[aws_sdk_sfn::types::HistoryEvent]) -> usize {
    events
        .iter()
        .flat_map(|e| {
            [
                e.state_entered_event_details().and_then(|d| d.input()),
                e.state_exited_event_details().and_then(|d| d.output()),
                e.execution_started_event_details().and_then(|d| d.input()),
                e.execution_succeeded_event_details()
                    .and_then(|d| d.output()),
            ]
        })
        .flatten()
        .map(str::len)
        .max()
        .unwrap_or(0)
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for child in &mut self.watchers {
            // The whole process group: cargo-lambda and the functions it runs.
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
    }
}
