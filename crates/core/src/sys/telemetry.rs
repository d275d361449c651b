//! `sys/metrics`, `sys/in-flight-req` and `sys/host-info`, as OpenBao 2.x
//! answers them. The metrics come from the recorder the binary installed
//! (see [`crate::telemetry`]); the namespace stage refuses these paths
//! outside the root namespace.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use strongroom_sdk::framework::{handler, Ctx, Field, FieldType, Path};
use strongroom_sdk::logical::{Operation, Response};
use strongroom_sdk::Result;

use super::{SysState, S};

/// `sys/metrics`' query.
#[derive(Deserialize)]
struct MetricsParams {
    #[serde(default)]
    format: String,
}

async fn metrics(s: S, ctx: Ctx) -> Result<Response> {
    let MetricsParams { format } = ctx.decode()?;
    s.core()?.metrics_response(&format)
}

/// OpenBao answers the requests in flight as a bare object keyed by
/// request id.
async fn in_flight(s: S, _ctx: Ctx) -> Result<Response> {
    let core = s.core()?;
    let mut out = Map::new();
    for r in core.in_flight().snapshot() {
        let addr = match (r.remote_addr, r.remote_port) {
            (Some(ip), Some(port)) => std::net::SocketAddr::new(ip, port).to_string(),
            (Some(ip), None) => ip.to_string(),
            _ => String::new(),
        };
        out.insert(
            r.id.clone(),
            json!({
                "start_time": humantime::format_rfc3339_nanos(r.start_time()).to_string(),
                "client_remote_address": addr,
                "request_path": format!("/v1/{}", r.path),
                "request_method": r.method,
                "client_id": "",
            }),
        );
    }
    Ok(Response::raw(200, Value::Object(out)))
}

async fn host_info(_s: S, _ctx: Ctx) -> Result<Response> {
    Ok(Response::data(crate::telemetry::host_info()))
}

pub(super) fn paths() -> Vec<Path<SysState>> {
    vec![
        Path::new("metrics")
            .fields(vec![Field::new("format", FieldType::String, "Format to export metrics into. Currently accepts only \"prometheus\".")])
            .decodes::<MetricsParams>()
            .op(Operation::Read, handler(metrics), "Export the metrics aggregated for telemetry purpose.")
            .help("Export the metrics aggregated for telemetry purpose.", "JSON in OpenBao's in-memory sink shape by default; ?format=prometheus (or Accept: application/openmetrics-text) gives Prometheus text."),
        Path::new("in-flight-req")
            .op(Operation::Read, handler(in_flight), "reports in-flight requests")
            .help("reports in-flight requests", "This path responds to the following HTTP methods.\nGET /\n\tReturns a map of in-flight requests."),
        Path::new("host-info")
            .op(Operation::Read, handler(host_info), "Information about the host instance that this Vault server is running on.")
            .help("Information about the host instance that this Vault server is running on.", "The CPU, CPU times, disk, host and memory of the machine."),
    ]
}
