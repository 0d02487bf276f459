use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn serves_metrics_and_health_over_a_real_socket() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let exported = Arc::new(Exported::default());
    exported.stats.count("https://c1:9850", "tls_error");
    exported.stats.count("https://c1:9850", "tls_error");
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(listener, exported, stop.clone()));
    let metrics = get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains(
            "vedette_agent_push_total{collector=\"https://c1:9850\",outcome=\"tls_error\"} 2"
        ),
        "{metrics}"
    );
    assert!(get(addr, "/healthz").await.ends_with("ok\n"));
    assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    stop.cancel();
    server.await.unwrap();
}

#[test]
fn renders_samples_and_counters() {
    let e = Exported::default();
    for _ in 0..4 {
        e.stats.count("http://127.0.0.1:9850", "ok");
    }
    *e.latest.lock().unwrap() = vec![
        Sample {
            name: "filesystem_used_ratio".into(),
            labels: [("mountpoint".to_string(), "/mnt/a \"b\"".to_string())].into(),
            ts_ms: 0,
            value: 0.25,
        },
        Sample {
            name: "network_receive_bytes_total".into(),
            labels: [("interface".to_string(), "eth0".to_string())].into(),
            ts_ms: 0,
            value: 10.0,
        },
    ];
    let text = render(&e);
    for line in [
        "vedette_agent_push_total{collector=\"http://127.0.0.1:9850\",outcome=\"ok\"} 4",
        "vedette_agent_queue_batches 0",
        "# TYPE vedette_filesystem_used_ratio gauge",
        "vedette_filesystem_used_ratio{mountpoint=\"/mnt/a \\\"b\\\"\"} 0.25",
        "# TYPE vedette_network_receive_bytes_total counter",
        "vedette_network_receive_bytes_total{interface=\"eth0\"} 10",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
    }
}
