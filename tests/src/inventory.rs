//! S3 Inventory reports written as S3 writes them, for tests and the benchmark (the emulator
//! keeps inventory configurations but never delivers a report): the configuration on the source
//! bucket, gzipped CSV data files with form-encoded keys and rows in no particular order, the
//! report folder's `manifest.json`, and `manifest.checksum` (its MD5, written last).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    InventoryConfiguration, InventoryDestination, InventoryFormat, InventoryFrequency, InventoryIncludedObjectVersions,
    InventoryOptionalField, InventoryS3BucketDestination, InventorySchedule,
};
use chrono::{DateTime, Utc};
use rand::seq::SliceRandom;
use std::io::Write;

/// One object as a report lists it.
#[derive(Clone, Debug)]
pub struct Row {
    pub key: String,
    pub size: u64,
    pub etag: String,
}

/// Where a report goes and what it looks like.
pub struct Report<'a> {
    pub source: &'a str,
    pub id: &'a str,
    /// The destination bucket (same region) and prefix.
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub format: InventoryFormat,
    pub created: DateTime<Utc>,
    pub files: usize,
    /// Write `manifest.checksum` (S3 writes it last: a folder without it is still being delivered).
    pub complete: bool,
    /// Rows in key order, each file a key range; otherwise shuffled over all files (nothing in
    /// S3's documentation promises an order).
    pub ordered: bool,
}

/// Puts the inventory configuration `report.id` on the source bucket (CSV unless said, Size and
/// ETag included).
pub async fn configure(s3: &aws_sdk_s3::Client, report: &Report<'_>) {
    let destination = InventoryS3BucketDestination::builder()
        .bucket(format!("arn:aws:s3:::{}", report.bucket))
        .prefix(report.prefix)
        .format(report.format.clone())
        .build()
        .expect("inventory destination");
    let config = InventoryConfiguration::builder()
        .id(report.id)
        .is_enabled(true)
        .included_object_versions(InventoryIncludedObjectVersions::Current)
        .optional_fields(InventoryOptionalField::Size)
        .optional_fields(InventoryOptionalField::ETag)
        .destination(InventoryDestination::builder().s3_bucket_destination(destination).build())
        .schedule(InventorySchedule::builder().frequency(InventoryFrequency::Daily).build().expect("schedule"))
        .build()
        .expect("inventory configuration");
    s3.put_bucket_inventory_configuration()
        .bucket(report.source)
        .id(report.id)
        .inventory_configuration(config)
        .send()
        .await
        .expect("put inventory configuration");
}

/// Writes one report of `rows` (shuffled, split over `report.files` data files); returns the
/// manifest's key.
pub async fn write(s3: &aws_sdk_s3::Client, report: &Report<'_>, rows: &[Row]) -> String {
    let base = format!("{}/{}/{}/", report.prefix.trim_end_matches('/'), report.source, report.id);
    let mut shuffled = rows.to_vec();
    if report.ordered {
        shuffled.sort_by(|a, b| a.key.cmp(&b.key));
    } else {
        shuffled.shuffle(&mut rand::rng());
    }
    let per_file = shuffled.len().div_ceil(report.files.max(1)).max(1);
    let mut files = Vec::new();
    for (i, chunk) in shuffled.chunks(per_file).enumerate() {
        let mut csv = String::new();
        for row in chunk {
            csv.push_str(&format!(
                "\"{}\",\"{}\",\"{}\",\"{}\"\n",
                report.source,
                form_encode(&row.key),
                row.size,
                row.etag
            ));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(csv.as_bytes()).expect("gzip");
        let body = gz.finish().expect("gzip");
        let key = format!("{base}data/{}-{i}.csv.gz", report.created.timestamp_millis());
        files.push(serde_json::json!({"key": key, "size": body.len(), "MD5checksum": ""}));
        s3.put_object().bucket(report.bucket).key(&key).body(ByteStream::from(body)).send().await.expect("data file");
    }
    let folder = format!("{base}{}/", report.created.format("%Y-%m-%dT%H-%MZ"));
    let manifest = serde_json::json!({
        "sourceBucket": report.source,
        "destinationBucket": format!("arn:aws:s3:::{}", report.bucket),
        "version": "2016-11-30",
        "creationTimestamp": report.created.timestamp_millis().to_string(),
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, ETag",
        "files": files,
    });
    let key = format!("{folder}manifest.json");
    let put = s3
        .put_object()
        .bucket(report.bucket)
        .key(&key)
        .body(ByteStream::from(serde_json::to_vec_pretty(&manifest).expect("manifest")))
        .send()
        .await
        .expect("manifest");
    if report.complete {
        // A single PUT's ETag is the MD5 of its body: what manifest.checksum holds.
        let md5 = put.e_tag().unwrap_or_default().trim_matches('"').to_owned();
        s3.put_object()
            .bucket(report.bucket)
            .key(format!("{folder}manifest.checksum"))
            .body(ByteStream::from(md5.into_bytes()))
            .send()
            .await
            .expect("checksum");
    }
    key
}

/// Every object of `bucket` as a report would list it.
pub async fn rows_of(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for object in page.expect("list").contents() {
            rows.push(Row {
                key: object.key().unwrap_or_default().to_owned(),
                size: object.size().unwrap_or_default() as u64,
                etag: object.e_tag().unwrap_or_default().trim_matches('"').to_owned(),
            });
        }
    }
    rows
}

/// Form encoding as S3 Inventory writes CSV keys: `+` for a space, `%XX` for every byte but
/// letters, digits and `-_.*`.
fn form_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b if b.is_ascii_alphanumeric() || b"-_.*".contains(&b) => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}
