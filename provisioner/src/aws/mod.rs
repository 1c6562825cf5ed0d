//! The thin AWS shell: connects the SDK clients, reads the cluster's resources into the plain
//! model ([`observe`]), carries out a plan's actions ([`execute`]) and waits for the groups'
//! instances ([`wait`]). All decisions are made by the pure core; nothing here decides what to
//! change.
//!
//! Retries: every client uses the SDK's standard retry mode with [`MAX_ATTEMPTS`] attempts and
//! exponential backoff with jitter from [`INITIAL_BACKOFF`] up to [`MAX_BACKOFF`]; throttling
//! errors (`Throttling`, `RequestLimitExceeded`, ...) and transient network failures are retried
//! that way. On top of it, deletions that fail with `DependencyViolation` (a security group
//! still used by terminating instances, a subnet still holding their interfaces) are retried
//! until the wait timeout.

pub mod execute;
pub mod observe;
pub mod wait;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::Region;
use aws_config::retry::RetryConfig;
use aws_sdk_ec2::config::Credentials;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

pub use aws_sdk_autoscaling;
pub use aws_sdk_ec2;

use crate::Error;

/// Attempts per request, first one included.
pub const MAX_ATTEMPTS: u32 = 8;
/// First retry delay (before jitter).
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// How to reach AWS.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Region; `None` leaves it to the standard chain (AWS_REGION, the profile).
    pub region: Option<String>,
    /// Endpoint for every service (moto in tests); `None` uses AWS_ENDPOINT_URL or AWS itself.
    pub endpoint_url: Option<String>,
    /// Access key id and secret; `None` uses the standard credentials chain.
    pub static_credentials: Option<(String, String)>,
}

/// The SDK clients for one cluster's region.
#[derive(Debug, Clone)]
pub struct Aws {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// Auto Scaling.
    pub autoscaling: aws_sdk_autoscaling::Client,
}

impl Aws {
    /// Loads the configuration (standard chain for what `conn` leaves open) and builds the
    /// clients. Fails without a region.
    pub async fn connect(conn: &Connection) -> Result<Self, Error> {
        let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::AwsLc)).build_https();
        let retry =
            RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS).with_initial_backoff(INITIAL_BACKOFF).with_max_backoff(MAX_BACKOFF);
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http).retry_config(retry);
        if let Some(region) = &conn.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &conn.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((id, secret)) = &conn.static_credentials {
            loader = loader.credentials_provider(Credentials::new(id, secret, None, None, "framework-provisioner"));
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(Error::NoRegion);
        }
        Ok(Self { ec2: aws_sdk_ec2::Client::new(&config), autoscaling: aws_sdk_autoscaling::Client::new(&config) })
    }
}

/// The error code of an SDK error, if the service sent one.
pub(crate) fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<String> {
    match e {
        SdkError::ServiceError(s) => s.err().code().map(str::to_string),
        _ => None,
    }
}

/// Wraps an SDK error with the resource, the operation and what to do about it.
pub(crate) fn fail<E, R>(resource: impl ToString, operation: &'static str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = code(&e).unwrap_or_default();
    let fix = match code.as_str() {
        "" if matches!(e, SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)) => {
            "AWS could not be reached: check the network, the region and --endpoint-url / AWS_ENDPOINT_URL".to_string()
        }
        "AuthFailure" | "UnauthorizedOperation" | "AccessDenied" | "InvalidClientTokenId" | "SignatureDoesNotMatch" | "ExpiredToken" => {
            format!("check the credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID) and that their IAM policy allows {operation}")
        }
        "DependencyViolation" | "ResourceInUse" => {
            "something outside the cluster still uses it: remove that dependency, then run the command again".to_string()
        }
        c if c.starts_with("InvalidAMIID") => "set ami in the cluster file to an AMI that exists in this region".to_string(),
        c if c.starts_with("InvalidKeyPair") => "create the key pair in this region or fix key_name in the cluster file".to_string(),
        "VpcLimitExceeded" | "LimitExceeded" | "InstanceLimitExceeded" => {
            "an account limit was reached: raise the quota or free resources".to_string()
        }
        c if c.contains("Throttl") || c == "RequestLimitExceeded" => {
            format!("AWS kept throttling after {MAX_ATTEMPTS} attempts: wait a minute and run the command again")
        }
        _ => "fix the cause named above and run the command again (apply resumes where it stopped)".to_string(),
    };
    Error::Aws { resource: resource.to_string(), operation, message: DisplayErrorContext(&e).to_string(), fix }
}
