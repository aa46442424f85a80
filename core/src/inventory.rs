//! S3 Inventory reports as a bucket scan reads them: the configuration's checks, where the
//! latest report lives, its `manifest.json`, and the rows of its gzipped CSV data files.
//!
//! A report is what S3 delivers to the configuration's destination, under
//! `<prefix>/<source-bucket>/<config-id>/`: a folder per report named by its start time
//! (`2026-12-03T02-00Z/`, holding `manifest.json` and, once the report is complete,
//! `manifest.checksum`) and the data files the manifest names. Keys in CSV files are URL-encoded
//! (form encoding: `+` is a space). Nothing orders the rows, so a scan sorts what it reads.

use backup_schemas::ObjectRef;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;
use std::io::BufRead;

/// A bucket's inventory configuration, as far as a scan needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryConfig {
    pub id: String,
    pub enabled: bool,
    /// The destination bucket's name (S3 gives an ARN; the adapter strips it).
    pub bucket: String,
    pub prefix: Option<String>,
    /// `CSV`, `ORC` or `Parquet`.
    pub format: String,
    /// The configuration's object filter.
    pub filter_prefix: Option<String>,
    /// Optional fields the report carries (`Size`, `ETag`, ...).
    pub fields: Vec<String>,
}

impl InventoryConfig {
    /// Why a scan of `scan_prefix` cannot use this configuration's reports, if it cannot: only
    /// enabled CSV reports with sizes and ETags, over all of the scanned keys, say what a backup
    /// needs to compare.
    pub fn unusable_for(&self, scan_prefix: Option<&str>) -> Option<String> {
        if !self.enabled {
            return Some(format!("inventory configuration {} is disabled", self.id));
        }
        if !self.format.eq_ignore_ascii_case("csv") {
            return Some(format!(
                "inventory configuration {} writes {}; only CSV reports are read",
                self.id, self.format
            ));
        }
        for field in ["Size", "ETag"] {
            if !self.fields.iter().any(|f| f.eq_ignore_ascii_case(field)) {
                return Some(format!("inventory configuration {} does not include the {field} field", self.id));
            }
        }
        if let Some(filter) = self.filter_prefix.as_deref().filter(|f| !f.is_empty()) {
            if !scan_prefix.unwrap_or("").starts_with(filter) {
                return Some(format!(
                    "inventory configuration {} covers only keys under {filter:?}, the scan covers {:?}",
                    self.id,
                    scan_prefix.unwrap_or("")
                ));
            }
        }
        None
    }

    /// Where this configuration's reports of `source_bucket` land (ends with `/`).
    pub fn reports_prefix(&self, source_bucket: &str) -> String {
        let prefix = self.prefix.as_deref().map(|p| p.trim_end_matches('/')).filter(|p| !p.is_empty());
        match prefix {
            Some(prefix) => format!("{prefix}/{source_bucket}/{}/", self.id),
            None => format!("{source_bucket}/{}/", self.id),
        }
    }
}

/// The report folders among `folders` (common prefixes under [`InventoryConfig::reports_prefix`]),
/// newest first, with the time each report started.
pub fn report_folders(folders: &[String]) -> Vec<(DateTime<Utc>, String)> {
    let mut reports: Vec<(DateTime<Utc>, String)> = folders
        .iter()
        .filter_map(|folder| {
            let name = folder.trim_end_matches('/').rsplit('/').next()?;
            let at = NaiveDateTime::parse_from_str(name, "%Y-%m-%dT%H-%MZ").ok()?;
            Some((Utc.from_utc_datetime(&at), folder.clone()))
        })
        .collect();
    reports.sort_by(|a, b| b.cmp(a));
    reports
}

/// `manifest.json` of one report.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub source_bucket: String,
    pub file_format: String,
    pub file_schema: String,
    /// Milliseconds since the epoch, as a string.
    pub creation_timestamp: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ManifestFile {
    pub key: String,
    #[serde(default)]
    pub size: u64,
}

impl Manifest {
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|err| format!("manifest.json does not parse: {err}"))
    }

    pub fn created_at(&self) -> Result<DateTime<Utc>, String> {
        self.creation_timestamp.trim().parse::<i64>().ok().and_then(DateTime::from_timestamp_millis).ok_or_else(|| {
            format!("manifest.json creationTimestamp {:?} is not epoch milliseconds", self.creation_timestamp)
        })
    }

    /// Where each needed column sits in a row.
    pub fn layout(&self) -> Result<Layout, String> {
        if !self.file_format.eq_ignore_ascii_case("csv") {
            return Err(format!("the report is {}; only CSV reports are read", self.file_format));
        }
        let columns: Vec<&str> = self.file_schema.split(',').map(str::trim).collect();
        let at = |name: &str| columns.iter().position(|c| c.eq_ignore_ascii_case(name));
        let need = |name: &str| at(name).ok_or_else(|| format!("the report's fileSchema has no {name} column"));
        Ok(Layout {
            key: need("Key")?,
            size: need("Size")?,
            etag: need("ETag")?,
            is_latest: at("IsLatest"),
            is_delete_marker: at("IsDeleteMarker"),
            columns: columns.len(),
        })
    }
}

/// Column positions of a CSV report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    key: usize,
    size: usize,
    etag: usize,
    is_latest: Option<usize>,
    is_delete_marker: Option<usize>,
    columns: usize,
}

/// What one read of a data file gave: the live objects under the prefix among the rows read,
/// how many rows were read (the cursor moves by this), and whether the file ended.
#[derive(Debug, Default)]
pub struct Rows {
    pub objects: Vec<ObjectRef>,
    pub read: u64,
    pub ended: bool,
}

/// Reads up to `take` rows of a gzipped CSV data file after skipping `skip`, keeping the live
/// objects (latest version, not a delete marker) under `prefix`. A row that does not parse is
/// an error naming its line: a report the scan cannot read must not pass for an empty one.
pub fn read_rows(
    gzipped: impl std::io::Read,
    layout: Layout,
    prefix: Option<&str>,
    skip: u64,
    take: u64,
) -> Result<Rows, String> {
    let reader = std::io::BufReader::new(flate2::read::MultiGzDecoder::new(gzipped));
    let mut rows = Rows::default();
    let mut line_no = 0u64;
    for line in reader.lines() {
        let line = line.map_err(|err| format!("the data file does not decompress: {err}"))?;
        if line.trim().is_empty() {
            continue;
        }
        line_no += 1;
        if line_no <= skip {
            continue;
        }
        if rows.read == take {
            return Ok(rows);
        }
        rows.read += 1;
        let fields = csv_fields(&line).map_err(|err| format!("row {line_no}: {err}"))?;
        if fields.len() != layout.columns {
            return Err(format!("row {line_no} has {} fields, the fileSchema {}", fields.len(), layout.columns));
        }
        let flag = |at: Option<usize>| at.map(|i| fields[i].eq_ignore_ascii_case("true"));
        if flag(layout.is_delete_marker) == Some(true) || flag(layout.is_latest) == Some(false) {
            continue;
        }
        let key = form_decode(&fields[layout.key]).map_err(|err| format!("row {line_no}: key {err}"))?;
        if !key.starts_with(prefix.unwrap_or("")) {
            continue;
        }
        let size = match fields[layout.size].as_str() {
            "" => 0,
            size => size.parse().map_err(|_| format!("row {line_no}: size {size:?} is not a number"))?,
        };
        let etag = Some(fields[layout.etag].clone()).filter(|e| !e.is_empty());
        rows.objects.push(ObjectRef { key, size, etag, version_id: None });
    }
    rows.ended = true;
    Ok(rows)
}

/// The fields of one CSV line: quoted (`"a,b"`, with `""` for a quote) or bare.
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err("unterminated quoted field".into()),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("{c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Decodes a form-encoded key (`+` is a space, `%XX` a byte), as S3 Inventory writes CSV keys.
fn form_decode(encoded: &str) -> Result<String, String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit));
                let byte = hex.and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
                out.push(byte.ok_or_else(|| format!("{encoded:?} has a bad %-escape"))?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{encoded:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn manifest(schema: &str) -> Manifest {
        Manifest {
            source_bucket: "src".into(),
            file_format: "CSV".into(),
            file_schema: schema.into(),
            creation_timestamp: "1764813600000".into(),
            files: Vec::new(),
        }
    }

    #[test]
    fn rows_decode_keys_skip_old_versions_and_delete_markers_and_keep_the_cursor() {
        let layout = manifest("Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, ETag").layout().unwrap();
        let data = gzip(concat!(
            "\"src\",\"logs/a+b%2Bc%C3%A9.txt\",\"v2\",\"true\",\"false\",\"12\",\"e1\"\n",
            "\"src\",\"logs/a+b%2Bc%C3%A9.txt\",\"v1\",\"false\",\"false\",\"10\",\"e0\"\n",
            "\"src\",\"logs/gone\",\"v3\",\"true\",\"true\",\"\",\"\"\n",
            "\"src\",\"other/x\",\"v4\",\"true\",\"false\",\"1\",\"e4\"\n",
            "\"src\",\"logs/z\",\"v5\",\"true\",\"false\",\"7\",\"e5\"\n",
        ));
        let first = read_rows(data.as_slice(), layout, Some("logs/"), 0, 3).unwrap();
        assert_eq!((first.read, first.ended), (3, false));
        assert_eq!(first.objects.len(), 1);
        assert_eq!(first.objects[0].key, "logs/a b+cé.txt");
        assert_eq!((first.objects[0].size, first.objects[0].etag.as_deref()), (12, Some("e1")));
        let rest = read_rows(data.as_slice(), layout, Some("logs/"), 3, 3).unwrap();
        assert_eq!((rest.read, rest.ended), (2, true));
        assert_eq!(rest.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["logs/z"]);
    }

    #[test]
    fn a_row_that_does_not_parse_is_an_error_not_a_skipped_object() {
        let layout = manifest("Bucket, Key, Size, ETag").layout().unwrap();
        for bad in ["\"src\",\"k\",\"x1\",\"e\"\n", "\"src\",\"k\",\"1\"\n", "\"src\",\"k,\"1\",\"e\"\n"] {
            assert!(read_rows(gzip(bad).as_slice(), layout, None, 0, 10).is_err(), "{bad}");
        }
        assert!(read_rows(&b"not gzip"[..], layout, None, 0, 10).is_err());
    }

    #[test]
    fn a_schema_without_etag_or_size_or_a_columnar_report_is_refused() {
        assert!(manifest("Bucket, Key, Size").layout().unwrap_err().contains("ETag"));
        let mut parquet = manifest("Bucket, Key, Size, ETag");
        parquet.file_format = "Parquet".into();
        assert!(parquet.layout().unwrap_err().contains("only CSV"));
    }

    #[test]
    fn the_newest_report_folder_comes_first_and_other_folders_are_ignored() {
        let folders: Vec<String> = [
            "inv/src/daily/2026-12-02T02-00Z/",
            "inv/src/daily/data/",
            "inv/src/daily/2026-12-03T02-00Z/",
            "inv/src/daily/hive/",
        ]
        .map(String::from)
        .to_vec();
        let reports = report_folders(&folders);
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[0].1, "inv/src/daily/2026-12-03T02-00Z/");
        assert_eq!(reports[0].0.to_rfc3339(), "2026-12-03T02:00:00+00:00");
    }

    #[test]
    fn a_configuration_is_usable_only_when_its_reports_can_say_what_changed() {
        let config = InventoryConfig {
            id: "daily".into(),
            enabled: true,
            bucket: "inv".into(),
            prefix: Some("reports/".into()),
            format: "CSV".into(),
            filter_prefix: Some("logs/".into()),
            fields: vec!["Size".into(), "ETag".into()],
        };
        assert_eq!(config.unusable_for(Some("logs/2026/")), None);
        assert!(config.unusable_for(None).unwrap().contains("covers only keys under"));
        assert_eq!(config.reports_prefix("src"), "reports/src/daily/");
        let no_etag = InventoryConfig { fields: vec!["Size".into()], ..config.clone() };
        assert!(no_etag.unusable_for(Some("logs/")).unwrap().contains("ETag"));
        let disabled = InventoryConfig { enabled: false, ..config };
        assert!(disabled.unusable_for(Some("logs/")).unwrap().contains("disabled"));
    }
}
