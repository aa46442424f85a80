//! What a logical backup records of each table at backup time, and how a restore is compared with
//! it: the row count and an order-independent checksum of the rows' text. The checksum is a sum of
//! two 60-bit slices of each row's MD5, so it needs no sort and constant memory on the server,
//! and a changed, missing or extra row changes it (two rows swapping content do not: the row
//! count and the multiset of rows are what a restore must reproduce).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the statistics recipe, recorded with them: a drill compares only like with like.
pub const STATS_VERSION: u32 = 1;

/// Session settings that make a row's text the same on the backed-up and the restored server.
pub(crate) const STABLE_OUTPUT: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
    SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex';";

/// Generates one query per user table (ordinary tables, not those of extensions or the system),
/// run with `\gexec`; each prints `table<US>rows<US>checksum`.
pub(crate) const STATS_QUERY: &str = r#"SELECT format(
  'SELECT %L, count(*), coalesce(sum((''x'' || substr(h, 1, 15))::bit(60)::bigint::numeric), 0) || ''.'' || coalesce(sum((''x'' || substr(h, 17, 15))::bit(60)::bigint::numeric), 0) FROM (SELECT md5(t::text) AS h FROM %s AS t) AS s',
  q, q)
FROM (
  SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS q
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d
                    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1
) AS tables
"#;

/// One table's statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStats {
    pub rows: u64,
    pub checksum: String,
}

/// Parses the rows the statistics query printed (`table`, `rows`, `checksum`).
pub(crate) fn parse_stats(rows: &[Vec<String>]) -> Result<BTreeMap<String, TableStats>, String> {
    rows.iter()
        .map(|fields| match &fields[..] {
            [table, count, checksum] => count
                .parse::<u64>()
                .map(|rows| (table.clone(), TableStats { rows, checksum: checksum.clone() }))
                .map_err(|_| format!("table {table}: row count {count:?} is not a number")),
            other => Err(format!("unexpected statistics row with {} fields", other.len())),
        })
        .collect()
}

/// One way a restored database differs from its backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub table: String,
    pub what: String,
}

/// Every difference between the statistics recorded at backup time and a restore's.
pub fn compare(recorded: &BTreeMap<String, TableStats>, restored: &BTreeMap<String, TableStats>) -> Vec<Difference> {
    let mut out = Vec::new();
    for (table, want) in recorded {
        match restored.get(table) {
            None => out.push(Difference { table: table.clone(), what: "missing from the restore".into() }),
            Some(got) if got.rows != want.rows => out.push(Difference {
                table: table.clone(),
                what: format!("{} rows restored, {} at backup time", got.rows, want.rows),
            }),
            Some(got) if got.checksum != want.checksum => out.push(Difference {
                table: table.clone(),
                what: format!(
                    "same {} rows but different content (checksum {} vs {})",
                    got.rows, got.checksum, want.checksum
                ),
            }),
            Some(_) => {}
        }
    }
    for table in restored.keys().filter(|t| !recorded.contains_key(*t)) {
        out.push(Difference { table: table.clone(), what: "in the restore but not in the backup".into() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(entries: &[(&str, u64, &str)]) -> BTreeMap<String, TableStats> {
        entries.iter().map(|(t, r, c)| (t.to_string(), TableStats { rows: *r, checksum: c.to_string() })).collect()
    }

    #[test]
    fn equal_statistics_have_no_difference() {
        let a = stats(&[("public.orders", 3, "1.2"), ("public.items", 0, "0.0")]);
        assert!(compare(&a, &a.clone()).is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_named() {
        let recorded = stats(&[("public.orders", 3, "1.2"), ("public.items", 5, "7.7"), ("public.gone", 1, "9.9")]);
        let restored = stats(&[("public.orders", 4, "1.3"), ("public.items", 5, "7.8"), ("public.extra", 1, "1.1")]);
        let diffs = compare(&recorded, &restored);
        let text: Vec<String> = diffs.iter().map(|d| format!("{}: {}", d.table, d.what)).collect();
        assert_eq!(
            text,
            vec![
                "public.gone: missing from the restore",
                "public.items: same 5 rows but different content (checksum 7.8 vs 7.7)",
                "public.orders: 4 rows restored, 3 at backup time",
                "public.extra: in the restore but not in the backup",
            ]
        );
    }

    #[test]
    fn parses_the_query_output_and_refuses_garbage() {
        let rows = vec![vec!["public.orders".to_string(), "12".into(), "345.678".into()]];
        assert_eq!(parse_stats(&rows).unwrap(), stats(&[("public.orders", 12, "345.678")]));
        assert!(parse_stats(&[vec!["t".into(), "x".into(), "1.1".into()]]).is_err());
        assert!(parse_stats(&[vec!["t".into()]]).is_err());
    }
}
