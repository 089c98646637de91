//! Endpoint details that matter only when the standard `AWS_ENDPOINT_URL` variables point
//! the SDK somewhere other than AWS (the local emulator in tests and the demo).
//! Nothing here changes what happens against real AWS endpoints.

use aws_config::SdkConfig;
use aws_sdk_s3control::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_smithy_runtime_api::client::endpoint::EndpointFuture;

/// Whether the endpoint of `service` (its `AWS_ENDPOINT_URL_<SERVICE>` suffix) is overridden.
pub fn overridden(config: &SdkConfig, service_env: &str) -> bool {
    config.endpoint_url().is_some() || std::env::var_os(format!("AWS_ENDPOINT_URL_{service_env}")).is_some()
}

/// S3 Control puts the account id in front of the endpoint's host
/// (`123456789012.s3-control.<region>.amazonaws.com`). With an overridden endpoint such as
/// `http://127.0.0.1:5000` that host does not resolve; this resolver keeps everything the
/// standard resolver decides (signing, headers) and only drops that host prefix. It is
/// installed only when the endpoint is overridden.
#[derive(Debug, Default)]
pub struct NoAccountHostPrefix(DefaultResolver);

impl ResolveEndpoint for NoAccountHostPrefix {
    fn resolve_endpoint<'a>(&'a self, params: &'a Params) -> EndpointFuture<'a> {
        let inner = self.0.resolve_endpoint(params);
        let account = params.account_id().map(str::to_string);
        EndpointFuture::new(async move {
            let endpoint = inner.await?;
            match account {
                Some(account) => {
                    let url = endpoint.url().replacen(&format!("://{account}."), "://", 1);
                    Ok(endpoint.into_builder().url(url).build())
                }
                None => Ok(endpoint),
            }
        })
    }
}
