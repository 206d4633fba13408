use fedsync_tests::lambda_api::{Invocation, LambdaApi, LambdaProcess};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

#[tokio::test]
async fn real_runtime() {
    let api = LambdaApi::start().await;
    let started = Instant::now();
    let mut process = LambdaProcess::spawn(
        Path::new("/tmp/scratch-target/debug/lambda-echo"),
        &api,
        [("ZZZ_X", "1"), ("AWS_REGION", "eu-west-1")],
    );
    let first = api
        .wait_for_first_poll(Duration::from_secs(5))
        .await
        .expect("polled");
    println!("first poll after {:?}", first - started);
    let ok = api
        .invoke(json!({"hello": "world"}), Duration::from_secs(5))
        .await
        .expect_ok();
    println!("{}", serde_json::to_string_pretty(&ok).unwrap());
    let err = api.invoke(json!({"fail": 1}), Duration::from_secs(5)).await;
    println!("{err:?}");
    let again = api.invoke(json!({"n": 2}), Duration::from_secs(5)).await;
    assert!(matches!(again, Invocation::Ok(_)));
    assert!(
        process
            .wait_for_log("handling", Duration::from_secs(1))
            .await
    );
    println!("LOGS:\n{}", process.logs());
    assert!(process.try_exit_status().is_none());
    drop(process);

    // init failure
    let api = LambdaApi::start().await;
    let mut process = LambdaProcess::spawn(
        Path::new("/tmp/scratch-target/debug/lambda-echo"),
        &api,
        [("ECHO_INIT_FAIL", "1")],
    );
    let status = process.wait_for_exit(Duration::from_secs(5)).await;
    println!(
        "exit {status:?} init_error {:?} logs:\n{}",
        api.init_error(),
        process.logs()
    );
}
