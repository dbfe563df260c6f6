//! `pods/exec` and the channel protocols the fake offers: `v5.channel.k8s.io` first by
//! default (a stdin close is the close frame, channel 255: a half-close), only
//! `v4.channel.k8s.io` when told (Kubernetes 1.29 and older: kube-rs can end stdin there
//! only by closing the whole WebSocket, so the exit status is lost).

use harness::fake_kube::{V4_CHANNEL, sandbox_available};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::helpers::*;

async fn running_pod(client: &kube::Client, ns: &str) {
    create_namespace(client, ns).await;
    let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "x", "command": ["sh", "-c", "sleep 3600"]}]}}))
    .unwrap();
    Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await
        .unwrap();
    wait_pod(client, ns, "p", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
}

/// Runs `command` in the pod with `input` on its stdin, closing stdin afterwards when
/// `close` (else holding it open until the end). Returns the exit status (`None`: no
/// `Status` came) and the stdout (empty when the session broke off).
async fn exec(
    client: &kube::Client,
    ns: &str,
    command: &[&str],
    input: &[u8],
    close: bool,
) -> (Option<String>, String) {
    let pods = Api::<Pod>::namespaced(client.clone(), ns);
    let ap = AttachParams::default()
        .stdin(true)
        .stdout(true)
        .stderr(false);
    let mut attached = pods.exec("p", command.to_vec(), &ap).await.unwrap();
    let mut stdin = attached.stdin().unwrap();
    let mut stdout = attached.stdout().unwrap();
    let status = attached.take_status().unwrap();
    let output = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text).await;
        text
    });
    stdin.write_all(input).await.unwrap();
    if close {
        stdin.shutdown().await.unwrap();
    }
    let status = tokio::time::timeout(Duration::from_secs(20), status)
        .await
        .expect("the exec neither ended nor lost its socket in 20 s");
    drop(stdin);
    // kube-rs ends the stdout reader only when the session ends cleanly (with a status).
    let output = match tokio::time::timeout(Duration::from_secs(5), output).await {
        Ok(text) => text.unwrap(),
        Err(_) => String::new(),
    };
    (status.map(|s| s.status.unwrap_or_default()), output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_v5_a_stdin_close_is_a_half_close() {
    if !sandbox_available() {
        return;
    }
    let fake = FakeKube::start(FakeKubeOptions::default());
    let client = fake.client();
    running_pod(&client, "exec-v5").await;
    let (status, out) = exec(&client, "exec-v5", &["cat"], b"hello", true).await;
    assert_eq!(status.as_deref(), Some("Success"));
    assert_eq!(out, "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v4_only_server_has_no_stdin_close_but_in_band_input_works() {
    if !sandbox_available() {
        return;
    }
    let fake = FakeKube::start(FakeKubeOptions {
        stream_protocols: vec![V4_CHANNEL.to_string()],
        ..FakeKubeOptions::default()
    });
    let client = fake.client();
    running_pod(&client, "exec-v4").await;
    // kube-rs ends stdin on v4 by closing the socket: the command's status is lost.
    let (status, _) = exec(&client, "exec-v4", &["cat"], b"hello", true).await;
    assert_eq!(status, None);
    // An input whose end the command knows needs no close.
    let (status, out) = exec(&client, "exec-v4", &["head", "-c", "5"], b"hello", false).await;
    assert_eq!(status.as_deref(), Some("Success"));
    assert_eq!(out, "hello");
}
