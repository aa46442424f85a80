"""Alarms and dashboards read only metrics that exist: checked against the code and the collector.

An alarm on a metric nobody publishes never fires, and a widget on one stays empty; neither fails
anywhere. This script follows every metric that Terraform reads back to where it comes from:

  reads      every metric read by an `aws_cloudwatch_metric_alarm` (its own metric and each
             `metric_query`, SEARCH expressions included), by the widgets of an
             `aws_cloudwatch_dashboard` (the JSON of `dashboard_body`, written as `jsonencode(...)`
             of an HCL expression or a `local`, or as a JSON string) and, for the record, by the
             customized metrics of `aws_appautoscaling_policy`, anywhere under terraform/;
  code       the instruments `telemetry/src/metrics.rs` creates (`meter.u64_counter("name")`,
             `f64_histogram`, `f64_gauge`, ...), their kind, and the attribute keys each one is
             recorded with (`KeyValue::new("key", ...)` in the `Metrics` methods); the values of
             the `outcome` attribute (the worker's `Disposition::as_str()` in worker/src/stats.rs)
             and of `coverage_resources`' `status` and `resource_type` (`CoverageStatus::as_str()`
             in core/src/coverage.rs, `ResourceType::as_str()` in schemas/src/task.rs);
  collector  what the ADOT sidecar of `modules/fleet` publishes to CloudWatch: `awsemf` in the
             namespace `var.metrics_namespace`, with `metric_declarations` built from
             `local.emf_metric_dimensions` (metric name -> dimension sets) and
             `NoDimensionRollup`, so exactly those series exist; and the services export with
             delta temporality (OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta), which
             the alarms' Sum statistics and treat_missing_data choices assume.

It fails, listing each case, when a read in the fleet's namespace names a metric the code does not
define, a metric the collector does not export, a dimension set the collector does not publish for
it, an `outcome`, `status` or `resource_type` value the code never records (in `dimensions`, and in
the `dim="value"` terms of a SEARCH), or a statistic the published data cannot answer
(counters: Sum or SampleCount; nothing has percentiles, since EMF statistic sets carry no buckets);
when the collector exports a metric or dimension the code does not produce; when a namespace is
neither the fleet's nor an AWS one; or when a dashboard's metrics cannot be read. Metrics of AWS
namespaces (AWS/..., ECS/ContainerInsights) are exempt. Metrics the code defines that the collector
drops, and exported metrics that nothing reads, are listed for information.

Usage: check_metrics.py [repo root]      the check; exit 1 on any problem
       check_metrics.py --self-test [root]  feeds made-up alarms and widgets (a bogus metric name,
                                         a wrong dimension set, a wrong outcome, a percentile, ...)
                                         through the same code and expects each to fail, and a
                                         correct one and an AWS one to pass
"""
import json
import re
import sys
from pathlib import Path

import hcl2

AWS_NAMESPACES = ("AWS/", "ECS/ContainerInsights")
FLEET_NS_REF = "var.metrics_namespace"
# Statistics a CloudWatch statistic set (what EMF publishes for every data point) can answer.
SET_STATS = {"SampleCount", "Sum", "Average", "Minimum", "Maximum"}
COUNTER_STATS = {"Sum", "SampleCount"}
INSTRUMENT_KINDS = {
    "u64_counter": "counter", "f64_counter": "counter",
    "u64_observable_counter": "counter", "f64_observable_counter": "counter",
    "i64_up_down_counter": "counter", "f64_up_down_counter": "counter",
    "i64_observable_up_down_counter": "counter", "f64_observable_up_down_counter": "counter",
    "u64_histogram": "histogram", "f64_histogram": "histogram",
    "u64_gauge": "gauge", "f64_gauge": "gauge", "i64_gauge": "gauge",
    "u64_observable_gauge": "gauge", "f64_observable_gauge": "gauge", "i64_observable_gauge": "gauge",
}
# Attribute values that can be checked against the code: attribute -> (file, regex of the values).
LABEL_VALUES = {
    "outcome": ("worker/src/stats.rs", r'Disposition::\w+\s*=>\s*"([a-z_]+)"'),
    # coverage_resources: `CoverageStatus::as_str()` and `ResourceType::as_str()`.
    "status": ("core/src/coverage.rs", r'CoverageStatus::\w+\s*=>\s*"([a-z-]+)"'),
    "resource_type": ("schemas/src/task.rs", r'ResourceType::\w+\s*=>\s*"([a-z0-9-]+)"'),
}


class Ref:
    """A Terraform reference or other expression that is not a literal (`var.x`, `local.y[0]`)."""

    def __init__(self, text):
        self.text = text.strip()

    def __eq__(self, other):
        return isinstance(other, Ref) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return self.text


# --- HCL values ----------------------------------------------------------------------------------


def norm(v):
    """python-hcl2 value -> Python: quoted literals unquoted, `${expr}` -> Ref, containers recursed."""
    if isinstance(v, dict):
        return {norm(k): norm(x) for k, x in v.items() if not (isinstance(k, str) and k.startswith("__"))}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, str):
        if len(v) >= 2 and v[0] == v[-1] == '"':
            return unescape(v[1:-1])
        if v.startswith("${") and v.endswith("}") and balanced(v[2:-1]):
            return parse_expression(v[2:-1])
        return v
    return v


def balanced(s):
    depth = 0
    for c in s:
        depth += c in "{[("
        depth -= c in "}])"
        if depth < 0:
            return False
    return depth == 0


def unescape(s):
    return re.sub(r'\\(["\\nt])', lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


class Parser:
    """Just enough of HCL's expression syntax to read the literal structure of `jsonencode(...)`
    and `yamlencode(...)` arguments: lists, objects, strings (escapes resolved, `${...}` kept as
    text), numbers, bools, null, references and function calls. Anything else (operators,
    conditionals, `for` expressions) becomes a Ref holding its source text."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def ws(self):
        while True:
            while self.i < len(self.s) and self.s[self.i] in " \t\r\n":
                self.i += 1
            if self.s.startswith("#", self.i) or self.s.startswith("//", self.i):
                while self.i < len(self.s) and self.s[self.i] != "\n":
                    self.i += 1
            elif self.s.startswith("/*", self.i):
                end = self.s.find("*/", self.i)
                self.i = len(self.s) if end < 0 else end + 2
            else:
                return

    def peek(self):
        self.ws()
        return self.s[self.i] if self.i < len(self.s) else ""

    def value(self):
        start = self.i
        v = self.primary()
        self.ws()
        c = self.peek()
        if c and c not in ",]})" and not self.at_key():
            # An operator or conditional follows: keep the whole expression as text.
            self.skip_to_delimiter()
            return Ref(self.s[start:self.i])
        return v

    def at_key(self):
        m = re.compile(r'\s*(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*)\s*[=:](?!=)').match(self.s, self.i)
        return bool(m)

    def skip_to_delimiter(self):
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.string()
                continue
            if c in "[{(":
                depth += 1
            elif c in "]})":
                if depth == 0:
                    return
                depth -= 1
            elif c == "," and depth == 0:
                return
            self.i += 1

    def primary(self):
        c = self.peek()
        if c == "[":
            if re.compile(r"\[\s*for\b").match(self.s, self.i):
                return self.raw_group()
            self.i += 1
            items = []
            while self.peek() != "]":
                if not self.peek():
                    raise ValueError("unterminated list")
                items.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return items
        if c == "{":
            if re.compile(r"\{\s*for\b").match(self.s, self.i):
                return self.raw_group()
            self.i += 1
            obj = {}
            while self.peek() != "}":
                if not self.peek():
                    raise ValueError("unterminated object")
                if self.peek() == '"':
                    key = self.string()
                else:
                    m = re.compile(r"[A-Za-z_][\w-]*").match(self.s, self.i)
                    if not m:
                        raise ValueError(f"object key expected at {self.s[self.i:self.i + 30]!r}")
                    key = m.group(0)
                    self.i = m.end()
                self.ws()
                if self.peek() not in "=:":
                    raise ValueError(f"'=' expected after key {key!r}")
                self.i += 1
                obj[key] = self.value()
                if self.peek() == ",":
                    self.i += 1
            self.i += 1
            return obj
        if c == '"':
            return self.string()
        if c == "(":
            return self.raw_group()
        m = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return float(m.group(0)) if any(x in m.group(0) for x in ".eE") else int(m.group(0))
        m = re.compile(r"[A-Za-z_][\w-]*(?:\.[A-Za-z_*][\w-]*|\[[^\]]*\])*").match(self.s, self.i)
        if m:
            name = m.group(0)
            self.i = m.end()
            if name in ("true", "false"):
                return name == "true"
            if name == "null":
                return None
            if self.peek() == "(":
                self.i += 1
                args = []
                while self.peek() != ")":
                    if not self.peek():
                        raise ValueError("unterminated call")
                    args.append(self.value())
                    if self.peek() == ",":
                        self.i += 1
                self.i += 1
                return {"__call__": name, "args": args}
            return Ref(name)
        raise ValueError(f"cannot parse {self.s[self.i:self.i + 30]!r}")

    def raw_group(self):
        start = self.i
        depth = 0
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == '"':
                self.string()
                continue
            depth += c in "[{("
            depth -= c in "]})"
            self.i += 1
            if depth == 0:
                break
        return Ref(self.s[start:self.i])

    def string(self):
        assert self.s[self.i] == '"'
        self.i += 1
        out = []
        while self.i < len(self.s):
            c = self.s[self.i]
            if c == "\\" and self.i + 1 < len(self.s):
                out.append({"n": "\n", "t": "\t"}.get(self.s[self.i + 1], self.s[self.i + 1]))
                self.i += 2
            elif self.s.startswith("${", self.i) or self.s.startswith("%{", self.i):
                depth, j = 0, self.i + 1
                while j < len(self.s):
                    depth += self.s[j] == "{"
                    depth -= self.s[j] == "}"
                    j += 1
                    if depth == 0:
                        break
                out.append(self.s[self.i:j])
                self.i = j
            elif c == '"':
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1
        raise ValueError("unterminated string")


def parse_expression(text):
    p = Parser(text)
    try:
        v = p.value()
        if p.peek():
            return Ref(text)
        return v
    except ValueError:
        return Ref(text)


def call_arg(v, fn):
    """The single argument of `fn(...)` (jsonencode, yamlencode), else None."""
    if isinstance(v, dict) and v.get("__call__") == fn and len(v.get("args", [])) == 1:
        return v["args"][0]
    return None


# --- the code ------------------------------------------------------------------------------------


def code_metrics(root):
    """{instrument name: {"kind", "labels", "methods"}} from telemetry/src/metrics.rs."""
    path = root / "telemetry/src/metrics.rs"
    text = re.sub(r"//[^\n]*", "", path.read_text())
    kinds = "|".join(INSTRUMENT_KINDS)
    metrics, field_of = {}, {}
    for m in re.finditer(rf'\.\s*({kinds})\s*\(\s*"([^"]+)"\s*\)', text):
        metrics[m.group(2)] = {"kind": INSTRUMENT_KINDS[m.group(1)], "labels": set(), "methods": set()}
    for m in re.finditer(rf'(\w+)\s*:\s*meter\s*\.\s*({kinds})\s*\(\s*"([^"]+)"', text):
        field_of[m.group(1)] = m.group(3)
    if not metrics:
        sys.exit(f"metrics: no instruments found in {path.relative_to(root)} (meter.u64_counter(\"...\"), ...)")
    # Attribute keys per instrument, from the `Metrics` methods that record it.
    for fn in re.finditer(r"\bpub fn (\w+)\s*\(\s*&self[^{]*\{(.*?)\n    \}", text, re.S):
        method, body = fn.group(1), fn.group(2)
        arrays = {a.group(1): set(re.findall(r'KeyValue::new\(\s*"([^"]+)"', a.group(2)))
                  for a in re.finditer(r"let\s+(\w+)\s*=\s*\[(.*?)\];", body, re.S)}
        # rustfmt may break `self.field` and `.record(` over two lines.
        for call in re.finditer(r"self\.(\w+)\s*\.(?:add|record)\((.*?)\);", body, re.S):
            name = field_of.get(call.group(1))
            if name is None:
                continue
            args = call.group(2)
            keys = set(re.findall(r'KeyValue::new\(\s*"([^"]+)"', args))
            for ref in re.findall(r"&(\w+)\b", args):
                keys |= arrays.get(ref, set())
            metrics[name]["labels"] |= keys
            metrics[name]["methods"].add(method)
    return metrics


def called_methods(root, methods):
    """Which of the `Metrics` methods the binaries call (tests and metrics.rs itself left out)."""
    called = set()
    pattern = re.compile(r"\.(" + "|".join(map(re.escape, methods)) + r")\s*\(") if methods else None
    for path in sorted(root.glob("*/src/**/*.rs")):
        rel = path.relative_to(root).as_posix()
        if rel == "telemetry/src/metrics.rs" or rel.startswith("tests/"):
            continue
        code = re.sub(r"//[^\n]*", "", path.read_text())
        code = re.split(r"#\[cfg\(test\)\]", code)[0]
        if pattern:
            called |= set(pattern.findall(code))
    return called


def label_values(root):
    out = {}
    for label, (rel, rx) in LABEL_VALUES.items():
        path = root / rel
        values = set(re.findall(rx, path.read_text())) if path.is_file() else set()
        if not values:
            sys.exit(f"metrics: no values of `{label}` found in {rel}")
        out[label] = values
    return out


# --- the collector -------------------------------------------------------------------------------


def load_tf(path):
    with open(path, encoding="utf-8") as f:
        return hcl2.load(f)


def module_locals(doc):
    merged = {}
    for block in doc.get("locals", []):
        for k, v in block.items():
            if not k.startswith("__"):
                merged[k] = v
    return merged


def variable_default(doc, name):
    for block in doc.get("variable", []):
        for label, body in block.items():
            if norm(label) == name:
                return norm(body.get("default"))
    return None


def collector(root, problems):
    """(namespace, {metric: [dimension set, ...]}) that the fleet's ADOT sidecar publishes."""
    fleet = root / "terraform/modules/fleet"
    main, variables = load_tf(fleet / "main.tf"), load_tf(fleet / "variables.tf")
    where = "terraform/modules/fleet/main.tf"
    loc = module_locals(main)
    table = norm(loc.get("emf_metric_dimensions"))
    if not isinstance(table, dict) or not table:
        problems.append(f"{where}: local.emf_metric_dimensions (metric -> list of dimension sets) is missing")
        table = {}
    emitted = {}
    for metric, sets in table.items():
        if not isinstance(sets, list) or not all(isinstance(s, list) and all(isinstance(d, str) for d in s) for s in sets):
            problems.append(f"{where}: local.emf_metric_dimensions.{metric} must be a list of lists of attribute names")
            continue
        emitted[metric] = [frozenset(s) for s in sets]

    cfg = call_arg(norm(loc.get("adot_config")), "yamlencode")
    emf = cfg.get("exporters", {}).get("awsemf") if isinstance(cfg, dict) else None
    if not isinstance(emf, dict):
        problems.append(f"{where}: local.adot_config must be yamlencode({{...}}) with exporters.awsemf")
    else:
        if emf.get("namespace") != Ref(FLEET_NS_REF):
            problems.append(f"{where}: the awsemf exporter's namespace must be {FLEET_NS_REF} (is {emf.get('namespace')!r})")
        if emf.get("dimension_rollup_option") != "NoDimensionRollup":
            problems.append(f"{where}: awsemf dimension_rollup_option must be \"NoDimensionRollup\" (else it publishes "
                            "dimension sets beyond local.emf_metric_dimensions)")
        decl = emf.get("metric_declarations")
        if not (isinstance(decl, Ref) and "local.emf_metric_dimensions" in decl.text and "metric_name_selectors" in decl.text):
            problems.append(f"{where}: awsemf metric_declarations must be built from local.emf_metric_dimensions "
                            "(dimensions and metric_name_selectors [\"^<name>$\"] per entry)")
        if isinstance(emf.get("resource_to_telemetry_conversion"), dict):
            problems.append(f"{where}: awsemf resource_to_telemetry_conversion would add resource attributes to the labels")
    text = (fleet / "main.tf").read_text()
    if not re.search(r'\bOTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE\s*=\s*"delta"', text):
        problems.append(f"{where}: the services must export metrics with OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE "
                        "= \"delta\" (the alarms read counter increments with Sum)")

    namespace = variable_default(variables, "metrics_namespace")
    mon = root / "terraform/modules/monitoring/variables.tf"
    if mon.is_file():
        other = variable_default(load_tf(mon), "metrics_namespace")
        if other != namespace:
            problems.append(f"terraform/modules/monitoring/variables.tf: metrics_namespace default {other!r} differs from the "
                            f"fleet module's {namespace!r}")
    if not isinstance(namespace, str) or not namespace:
        problems.append("terraform/modules/fleet/variables.tf: variable metrics_namespace needs a default")
    return namespace, emitted


# --- what Terraform reads ------------------------------------------------------------------------


def read(where, namespace, metric, dims, stat):
    return {"where": where, "namespace": namespace, "metric": metric, "dims": dims, "stat": stat}


SEARCH_RX = re.compile(r"SEARCH\s*\(\s*'((?:[^'\\]|\\.)*)'\s*,\s*'(\w+)'")


def search_reads(where, expression, problems):
    out = []
    for m in SEARCH_RX.finditer(expression):
        query, stat = m.group(1), m.group(2)
        name = re.search(r'MetricName\s*=\s*"?([\w./:-]+)"?', query)
        schema = re.search(r"\{([^{}]*(?:\$\{[^}]*\}[^{}]*)*)\}", query)
        ns, dims = None, None
        if schema:
            parts = [p.strip().strip('"') for p in schema.group(1).split(",")]
            ns = Ref(parts[0][2:-1]) if parts[0].startswith("${") else parts[0]
            dims = {d: None for d in parts[1:]}
        nsm = re.search(r'Namespace\s*=\s*"?([^"\s]+)"?', query)
        if nsm and ns is None:
            ns = Ref(nsm.group(1)[2:-1]) if nsm.group(1).startswith("${") else nsm.group(1)
        if not name:
            problems.append(f"{where}: SEARCH('{query}') names no MetricName=: cannot be checked")
            continue
        # Dimension values the query selects (`status="stale"`, several with OR): one read each, so
        # that the values are checked against the code like an alarm's `dimensions`.
        picks = [(k, v) for k, v in re.findall(r'\b(\w+)\s*=\s*"([^"]*)"', query[schema.end():] if schema else "")
                 if isinstance(dims, dict) and k in dims]
        for k, v in picks or [(None, None)]:
            out.append(read(f"{where} SEARCH", ns, name.group(1), dims if k is None else {**dims, k: v}, stat))
    if "SEARCH" in expression and not out and not any(p.startswith(where) for p in problems):
        problems.append(f"{where}: cannot read the SEARCH in {expression!r}")
    return out


def alarm_reads(where, body, problems):
    out = []
    if "metric_name" in body:
        dims = body.get("dimensions") or {}
        out.append(read(where, body.get("namespace"), body["metric_name"], dims,
                        body.get("statistic") or body.get("extended_statistic")))
    for q in body.get("metric_query", []) or []:
        qid = q.get("id")
        for m in q.get("metric", []) or []:
            out.append(read(f"{where} metric_query {qid}", m.get("namespace"), m.get("metric_name"),
                            m.get("dimensions") or {}, m.get("stat")))
        if isinstance(q.get("expression"), str):
            out += search_reads(f"{where} metric_query {qid}", q["expression"], problems)
    return out


def dashboard_reads(where, body, locals_, problems):
    value = body.get("dashboard_body")
    doc = call_arg(value, "jsonencode")
    if isinstance(doc, Ref) and doc.text.startswith("local.") and doc.text[6:] in locals_:
        doc = norm(locals_[doc.text[6:]])
    elif doc is None and isinstance(value, str):
        try:
            doc = json.loads(value)
        except ValueError:
            doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("widgets"), list):
        problems.append(f"{where}: cannot read the widgets of dashboard_body (write it as jsonencode({{widgets = [...]}}), "
                        "jsonencode(local.x) or a JSON string)")
        return []
    out = []
    for n, w in enumerate(doc["widgets"]):
        if not isinstance(w, dict) or w.get("type") != "metric":
            continue
        props = w.get("properties")
        title = props.get("title") if isinstance(props, dict) else None
        wwhere = f"{where} widget {n} ({title!s})"
        rows = props.get("metrics") if isinstance(props, dict) else None
        if not isinstance(rows, list):
            problems.append(f"{wwhere}: properties.metrics must be a literal list of metric rows")
            continue
        previous = []
        for r, row in enumerate(rows):
            rwhere = f"{wwhere} row {r}"
            if not isinstance(row, list):
                problems.append(f"{rwhere}: cannot read the metric row {row!r}")
                continue
            options = row[-1] if row and isinstance(row[-1], dict) else {}
            fields = row[:-1] if options else row
            if not fields:
                expr = options.get("expression")
                if isinstance(expr, str):
                    out += search_reads(rwhere, expr, problems)
                else:
                    problems.append(f"{rwhere}: a row without metric must be an expression")
                continue
            fields = [previous[i] if f == "." and i < len(previous) else f for i, f in enumerate(fields)]
            previous = fields
            if len(fields) < 2 or len(fields) % 2 != 0:
                problems.append(f"{rwhere}: expected [namespace, metric, (dimension, value)...], got {row!r}")
                continue
            dims = {fields[i]: fields[i + 1] for i in range(2, len(fields), 2)}
            stat = options.get("stat") or props.get("stat") or "Average"
            out.append(read(rwhere, fields[0], fields[1], dims, stat))
    return out


def autoscaling_reads(where, body):
    out = []
    for cfg in body.get("target_tracking_scaling_policy_configuration", []) or []:
        for spec in cfg.get("customized_metric_specification", []) or []:
            if "metric_name" in spec:
                out.append(read(where, spec.get("namespace"), spec["metric_name"], {}, spec.get("statistic")))
            for m in spec.get("metrics", []) or []:
                for ms in m.get("metric_stat", []) or []:
                    for metric in ms.get("metric", []) or []:
                        dims = {d.get("name"): d.get("value") for d in metric.get("dimensions", []) or []}
                        out.append(read(f"{where} metrics {m.get('id')}", metric.get("namespace"),
                                        metric.get("metric_name"), dims, ms.get("stat")))
    return out


def terraform_reads(docs, problems):
    """(alarm and dashboard reads, autoscaling reads) of the parsed .tf files {rel path: doc}."""
    reads, scaling = [], []
    by_dir = {}
    for rel, doc in docs.items():
        by_dir.setdefault(str(Path(rel).parent), {}).update(module_locals(doc))
    for rel, doc in sorted(docs.items()):
        locals_ = by_dir[str(Path(rel).parent)]
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                rtype = norm(rtype)
                for name, body in named.items():
                    if name.startswith("__"):
                        continue
                    where = f"{rel}: {rtype}.{norm(name)}"
                    if rtype == "aws_cloudwatch_metric_alarm":
                        reads += alarm_reads(where, norm(body), problems)
                    elif rtype == "aws_cloudwatch_dashboard":
                        reads += dashboard_reads(where, norm(body), locals_, problems)
                    elif rtype == "aws_appautoscaling_policy":
                        scaling += autoscaling_reads(where, norm(body))
    return reads, scaling


# --- the check -----------------------------------------------------------------------------------


def namespace_kind(ns, fleet_ns):
    if ns == Ref(FLEET_NS_REF) or (isinstance(ns, str) and ns == fleet_ns):
        return "fleet"
    if isinstance(ns, str) and ns.startswith(AWS_NAMESPACES):
        return "aws"
    return "unknown"


def check_reads(reads, code, emitted, values, fleet_ns):
    problems = []
    for r in reads:
        where, metric, dims, stat = r["where"], r["metric"], r["dims"], r["stat"]
        kind = namespace_kind(r["namespace"], fleet_ns)
        if kind == "aws":
            continue
        if kind == "unknown":
            problems.append(f"{where}: namespace {r['namespace']!r} is neither the fleet's ({FLEET_NS_REF}, "
                            f"{fleet_ns!r}) nor an AWS one")
            continue
        if not isinstance(metric, str):
            problems.append(f"{where}: metric name {metric!r} is not a literal")
            continue
        if metric not in code:
            problems.append(f"{where}: reads {metric!r}, which the code does not define (telemetry/src/metrics.rs "
                            f"defines {', '.join(sorted(code))})")
            continue
        if metric not in emitted:
            problems.append(f"{where}: reads {metric!r}, which the collector does not export (add it to "
                            "local.emf_metric_dimensions in terraform/modules/fleet/main.tf)")
            continue
        if not isinstance(dims, dict):
            problems.append(f"{where}: dimensions {dims!r} are not a literal map")
            continue
        names = frozenset(dims)
        if names not in emitted[metric]:
            sets = ", ".join("[" + ", ".join(sorted(s)) + "]" for s in emitted[metric])
            problems.append(f"{where}: reads {metric!r} by [{', '.join(sorted(names))}], a dimension set the collector "
                            f"does not publish (published: {sets})")
        for d, v in dims.items():
            if d in values and isinstance(v, str) and v not in values[d]:
                problems.append(f"{where}: {metric}{{{d}={v!r}}} is never recorded ({d} is one of "
                                f"{', '.join(sorted(values[d]))})")
        ok = COUNTER_STATS if code[metric]["kind"] == "counter" else SET_STATS
        if stat not in ok:
            problems.append(f"{where}: reads {code[metric]['kind']} {metric!r} with statistic {stat!r}; use one of "
                            f"{', '.join(sorted(ok))}")
    return problems


def check_collector(code, emitted):
    problems = []
    for metric, sets in emitted.items():
        if metric not in code:
            problems.append(f"terraform/modules/fleet/main.tf: local.emf_metric_dimensions exports {metric!r}, which the "
                            "code does not define")
            continue
        for s in sets:
            extra = s - code[metric]["labels"]
            if extra:
                problems.append(f"terraform/modules/fleet/main.tf: local.emf_metric_dimensions publishes {metric!r} by "
                                f"[{', '.join(sorted(s))}], but the code records it without {', '.join(sorted(extra))} "
                                f"(its attributes: {', '.join(sorted(code[metric]['labels'])) or 'none'})")
    return problems


def parse_all(tf_dir, root, problems):
    docs = {}
    for path in sorted(tf_dir.rglob("*.tf")):
        if any(part.startswith(".") for part in path.relative_to(tf_dir).parts):
            continue
        rel = path.relative_to(root).as_posix()
        try:
            docs[rel] = load_tf(path)
        except Exception as e:  # noqa: BLE001 - a parse error is a failure of this check
            problems.append(f"{rel}: does not parse: {str(e).strip().splitlines()[0] if str(e).strip() else e}")
    return docs


def describe(r):
    ns = r["namespace"].text if isinstance(r["namespace"], Ref) else r["namespace"]
    dims = ",".join(sorted(r["dims"] or {}))
    return f"{ns} {r['metric']}" + (f"{{{dims}}}" if dims else "")


def main(root):
    problems = []
    code = code_metrics(root)
    values = label_values(root)
    fleet_ns, emitted = collector(root, problems)
    problems += check_collector(code, emitted)
    docs = parse_all(root / "terraform", root, problems)
    reads, scaling = terraform_reads(docs, problems)
    problems += check_reads(reads, code, emitted, values, fleet_ns)

    fleet_reads = [r for r in reads if namespace_kind(r["namespace"], fleet_ns) == "fleet"]
    print(f"metrics: the code defines {len(code)} instruments (telemetry/src/metrics.rs); the collector exports "
          f"{len(emitted)} of them to CloudWatch namespace {fleet_ns!r} (terraform/modules/fleet, awsemf)")
    print(f"metrics: alarms and dashboards read {len(reads)} series: {len(fleet_reads)} of the fleet "
          f"({len({r['metric'] for r in fleet_reads})} metrics), {len(reads) - len(fleet_reads)} of AWS namespaces")
    read_names = {r["metric"] for r in fleet_reads}
    calls = called_methods(root, sorted({m for c in code.values() for m in c["methods"]}))
    for metric in sorted(set(code) - set(emitted)):
        recorded = code[metric]["methods"] & calls
        how = (f"recorded by Metrics::{', '.join(sorted(recorded))}" if recorded else
               f"never recorded: no binary calls Metrics::{', '.join(sorted(code[metric]['methods'])) or '?'}")
        print(f"metrics: info: {metric!r} is defined in the code but not exported by the collector ({how})")
    for metric in sorted(set(emitted) - read_names):
        print(f"metrics: info: {metric!r} is exported but no alarm or dashboard reads it")
    if scaling:
        print("metrics: info: autoscaling reads " + "; ".join(sorted({describe(r) for r in scaling})) +
              " (" + ", ".join(sorted({r['where'].split(' metrics')[0] for r in scaling})) + ")")
    for p in problems:
        print(f"metrics: ERROR {p}")
    if problems:
        print(f"metrics: {len(problems)} problem(s): alarms or widgets read series that are never published")
        return 1
    print("metrics: every fleet metric read by an alarm or a dashboard is defined in the code and exported by the "
          "collector, with a published dimension set and a statistic its data can answer")
    return 0


# --- self-test ------------------------------------------------------------------------------------

SELF_TEST_CASES = [
    # (name, HCL, substring every expected problem contains or None for "no problem")
    ("alarm on a metric the code does not define", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "tasks_failed_total"
  statistic   = "Sum"
}''', "'tasks_failed_total', which the code does not define"),
    ("metric_query on a metric the code does not define", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  metric_query {
    id = "m"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "TasksFailed"
      stat        = "Sum"
    }
  }
  metric_query {
    id         = "e"
    expression = "m"
  }
}''', "'TasksFailed', which the code does not define"),
    ("dashboard widget on a metric the code does not define", '''
resource "aws_cloudwatch_dashboard" "bogus" {
  dashboard_body = jsonencode({
    widgets = [{ type = "metric", properties = { stat = "Sum", metrics = [
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.q],
      [var.metrics_namespace, "bogus_metric", { label = "x" }],
    ] } }]
  })
}''', "'bogus_metric', which the code does not define"),
    ("dashboard SEARCH on a metric the code does not define", '''
resource "aws_cloudwatch_dashboard" "bogus" {
  dashboard_body = jsonencode({
    widgets = [{ type = "metric", properties = { metrics = [
      [{ expression = "SEARCH('{${var.metrics_namespace},kind} MetricName=\\"no_such_metric\\"', 'Sum', 300)", id = "s" }],
    ] } }]
  })
}''', "'no_such_metric', which the code does not define"),
    ("defined in the code, not exported by the collector", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "only_in_code_total"
  statistic   = "Sum"
}''', "which the collector does not export"),
    ("dimension set the collector does not publish", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "tasks_total"
  dimensions  = { kind = "ebs_snapshot" }
  statistic   = "Sum"
}''', "a dimension set the collector does not publish"),
    ("outcome value the worker never records", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "tasks_total"
  dimensions  = { outcome = "FAILED" }
  statistic   = "Sum"
}''', "is never recorded"),
    ("coverage status the producer never records", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "coverage_resources"
  dimensions  = { status = "never_backed_up" }
  statistic   = "Maximum"
}''', "is never recorded"),
    ("gauge by a dimension set the collector does not publish", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "coverage_resources"
  dimensions  = { resource_type = "s3-bucket" }
  statistic   = "Maximum"
}''', "a dimension set the collector does not publish"),
    ("dashboard SEARCH selecting a coverage status the producer never records", '''
resource "aws_cloudwatch_dashboard" "bogus" {
  dashboard_body = jsonencode({
    widgets = [{ type = "metric", properties = { metrics = [
      [{ expression = "SUM(SEARCH('{${var.metrics_namespace},resource_type,status} MetricName=\\"coverage_resources\\" (status=\\"stale\\" OR status=\\"missing\\")', 'Maximum', 7200))", id = "s" }],
    ] } }]
  })
}''', "coverage_resources{status='missing'} is never recorded"),
    ("percentile of a histogram published as a statistic set", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace          = var.metrics_namespace
  metric_name        = "task_duration_seconds"
  extended_statistic = "p99"
}''', "with statistic 'p99'"),
    ("counter read with Average", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = var.metrics_namespace
  metric_name = "aws_calls_total"
  statistic   = "Average"
}''', "with statistic 'Average'"),
    ("namespace that is neither the fleet's nor AWS's", '''
resource "aws_cloudwatch_metric_alarm" "bogus" {
  namespace   = "Custom/Elsewhere"
  metric_name = "tasks_total"
  statistic   = "Sum"
}''', "is neither the fleet's"),
    ("correct fleet reads pass", '''
resource "aws_cloudwatch_metric_alarm" "good" {
  metric_query {
    id = "failed"
    metric {
      namespace   = var.metrics_namespace
      metric_name = "tasks_total"
      dimensions  = { outcome = "failed" }
      stat        = "Sum"
    }
  }
}
resource "aws_cloudwatch_dashboard" "good" {
  dashboard_body = jsonencode({
    widgets = [{ type = "metric", properties = { period = 300, metrics = [
      [var.metrics_namespace, "queue_lag_seconds", "kind", "ebs_snapshot", { stat = "Maximum" }],
      [".", "task_duration_seconds", { stat = "Average" }],
    ] } }]
  })
}''', None),
    ("AWS namespaces are exempt", '''
resource "aws_cloudwatch_metric_alarm" "aws" {
  namespace   = "AWS/SQS"
  metric_name = "NoSuchSqsMetric"
  dimensions  = { QueueName = "q" }
  statistic   = "p99"
}''', None),
]


def self_test(root):
    code = code_metrics(root)
    # A metric the code defines and the collector does not export (none does today).
    code["only_in_code_total"] = {"kind": "counter", "labels": set(), "methods": set()}
    values = label_values(root)
    setup = []
    fleet_ns, emitted = collector(root, setup)
    failures = []
    for name, hcl, expect in SELF_TEST_CASES:
        problems = []
        try:
            docs = {"self-test.tf": hcl2.loads(hcl)}
        except Exception as e:  # noqa: BLE001
            failures.append(f"{name}: the test HCL does not parse: {e}")
            continue
        reads, _ = terraform_reads(docs, problems)
        problems += check_reads(reads, code, emitted, values, fleet_ns)
        if not reads:
            failures.append(f"{name}: no metric read was found in the test HCL")
        elif expect is None and problems:
            failures.append(f"{name}: expected no problem, got: {'; '.join(problems)}")
        elif expect is not None and not any(expect in p for p in problems):
            failures.append(f"{name}: expected a problem containing {expect!r}, got: {'; '.join(problems) or 'none'}")
        else:
            print(f"metrics self-test: ok: {name}" + (f" -> {problems[0]}" if problems else ""))
    if setup:
        failures.append("the repository's own collector configuration has problems: " + "; ".join(setup))
    for f in failures:
        print(f"metrics self-test: FAILED: {f}")
    if failures:
        return 1
    print(f"metrics self-test: {len(SELF_TEST_CASES)} cases behaved as expected")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    selftest = "--self-test" in args
    args = [a for a in args if a != "--self-test"]
    repo = Path(args[0] if args else ".").resolve()
    sys.exit(self_test(repo) if selftest else main(repo))
