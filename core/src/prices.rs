//! AWS list prices, from the versioned table `core/prices/aws-list-prices.toml` (compiled in, so
//! a report always names the table it used). Read by the archive decision and the cost report.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const TABLE: &str = include_str!("../prices/aws-list-prices.toml");

/// The prices of one region, USD.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionPrices {
    pub ebs_snapshot_standard_gb_month: f64,
    pub ebs_snapshot_archive_gb_month: f64,
    pub ebs_archive_retrieval_gb: f64,
    pub rds_snapshot_gb_month: f64,
    pub aurora_snapshot_gb_month: f64,
    pub inter_region_transfer_gb: f64,
    pub sqs_per_million_requests: f64,
    pub dynamodb_per_million_writes: f64,
    pub dynamodb_per_million_reads: f64,
    /// Per storage class (S3's names: STANDARD, STANDARD_IA, GLACIER_IR, ...).
    pub s3_gb_month: BTreeMap<String, f64>,
}

impl RegionPrices {
    /// The price of an S3 storage class; STANDARD's for a class the table does not list.
    pub fn s3(&self, class: &str) -> f64 {
        self.s3_gb_month.get(class).or_else(|| self.s3_gb_month.get("STANDARD")).copied().unwrap_or(0.0)
    }
}

/// A region's differences from the default.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Overrides {
    ebs_snapshot_standard_gb_month: Option<f64>,
    ebs_snapshot_archive_gb_month: Option<f64>,
    ebs_archive_retrieval_gb: Option<f64>,
    rds_snapshot_gb_month: Option<f64>,
    aurora_snapshot_gb_month: Option<f64>,
    inter_region_transfer_gb: Option<f64>,
    sqs_per_million_requests: Option<f64>,
    dynamodb_per_million_writes: Option<f64>,
    dynamodb_per_million_reads: Option<f64>,
    #[serde(default)]
    s3_gb_month: BTreeMap<String, f64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// The date the figures were last checked.
    pub version: String,
    pub currency: String,
    default: RegionPrices,
    #[serde(default)]
    regions: BTreeMap<String, Overrides>,
}

impl PriceTable {
    /// The table compiled into this build.
    pub fn builtin() -> &'static PriceTable {
        static PARSED: OnceLock<PriceTable> = OnceLock::new();
        PARSED.get_or_init(|| PriceTable::parse(TABLE).expect("the built-in price table parses (tested)"))
    }

    pub fn parse(text: &str) -> Result<PriceTable, toml::de::Error> {
        toml::from_str(text)
    }

    /// The prices in `region`: its own figures where the table has them, the default's elsewhere.
    pub fn region(&self, region: &str) -> RegionPrices {
        let mut prices = self.default.clone();
        let Some(o) = self.regions.get(region) else { return prices };
        let set = |field: &mut f64, value: Option<f64>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut prices.ebs_snapshot_standard_gb_month, o.ebs_snapshot_standard_gb_month);
        set(&mut prices.ebs_snapshot_archive_gb_month, o.ebs_snapshot_archive_gb_month);
        set(&mut prices.ebs_archive_retrieval_gb, o.ebs_archive_retrieval_gb);
        set(&mut prices.rds_snapshot_gb_month, o.rds_snapshot_gb_month);
        set(&mut prices.aurora_snapshot_gb_month, o.aurora_snapshot_gb_month);
        set(&mut prices.inter_region_transfer_gb, o.inter_region_transfer_gb);
        set(&mut prices.sqs_per_million_requests, o.sqs_per_million_requests);
        set(&mut prices.dynamodb_per_million_writes, o.dynamodb_per_million_writes);
        set(&mut prices.dynamodb_per_million_reads, o.dynamodb_per_million_reads);
        prices.s3_gb_month.extend(o.s3_gb_month.clone());
        prices
    }

    /// Whether `region` has figures of its own (the report says when it fell back).
    pub fn has_region(&self, region: &str) -> bool {
        self.regions.contains_key(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_table_parses_and_regions_override_only_what_they_list() {
        let table = PriceTable::builtin();
        assert_eq!(table.currency, "USD");
        let virginia = table.region("us-east-1");
        assert_eq!(virginia.ebs_snapshot_standard_gb_month, 0.05);
        assert_eq!(virginia.ebs_snapshot_archive_gb_month, 0.0125);
        let frankfurt = table.region("eu-central-1");
        assert!(frankfurt.ebs_snapshot_standard_gb_month > virginia.ebs_snapshot_standard_gb_month);
        assert_eq!(frankfurt.rds_snapshot_gb_month, virginia.rds_snapshot_gb_month, "not overridden");
        assert_eq!(frankfurt.s3("DEEP_ARCHIVE"), virginia.s3("DEEP_ARCHIVE"), "class not overridden");
        assert_eq!(virginia.s3("SOMETHING_NEW"), virginia.s3("STANDARD"));
        assert!(table.has_region("eu-central-1") && !table.has_region("us-east-1"));
    }

    #[test]
    fn a_misspelt_override_is_an_error_not_a_silent_default() {
        let text = TABLE.to_owned() + "\n[regions.ap-south-1]\nebs_snapshot_standrd_gb_month = 0.1\n";
        assert!(PriceTable::parse(&text).is_err());
    }
}
