//! `framework-executor`: see the library's documentation.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    framework_executor::run().await
}
