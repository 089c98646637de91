//! Announcements published to S3 (`daemon.announce_s3`), besides the local directory.
//!
//! The files already written are uploaded as they are (not rendered again), with the
//! management account's credentials, through the home region's S3 endpoint. A failed
//! upload is reported to the caller; the local files stay whatever happens here.

use crate::aws::{AwsError, Fleet};
use crate::desired::names::S3Prefix;
use aws_sdk_s3::primitives::ByteStream;
use std::path::{Path, PathBuf};

/// What became of one file.
#[derive(Debug)]
pub struct Upload {
    pub path: PathBuf,
    /// `s3://bucket/key` of the object.
    pub uri: String,
    pub result: Result<(), AwsError>,
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("md") => "text/markdown; charset=utf-8",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// Uploads each of `paths` to `dest` under its file name, in `region`. Every file is
/// tried, whatever became of the others.
pub async fn upload(fleet: &Fleet, dest: &S3Prefix, region: &str, paths: &[PathBuf]) -> Vec<Upload> {
    let mgmt = fleet.management();
    let s3 = mgmt.s3(region);
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let key = dest.key(&name);
        let uri = format!("s3://{}/{key}", dest.bucket());
        let result = async {
            let body = ByteStream::from_path(path)
                .await
                .map_err(|e| AwsError::new("local", format!("cannot read {}: {e}", path.display())))?;
            mgmt.call(
                s3.put_object().bucket(dest.bucket()).key(&key).content_type(content_type(path)).body(body).send(),
            )
            .await
            .map_err(|e| {
                let e = AwsError::from(e);
                AwsError::new(e.code, format!("uploading {} to {uri}: {}", path.display(), e.message))
            })?;
            Ok(())
        }
        .await;
        match &result {
            Ok(()) => tracing::info!(path = %path.display(), uri = %uri, "announcement published"),
            Err(e) => tracing::error!(path = %path.display(), uri = %uri, error = %e,
                "announcement not published to S3; the local file is kept"),
        }
        out.push(Upload { path: path.clone(), uri, result });
    }
    out
}
