//! The token parameters of auth method roles, OpenBao's `tokenutil.
//! TokenParams`: the `token_*` fields a role stores, how a role write sets
//! them (with the older names each method still accepts, see [`Legacy`]),
//! how a role read shows them, and the [`TokenIssue`] a login asks for.
//! The methods differ only where OpenBao's do; each difference is a field
//! of [`Legacy`], and the three dialects are its constants.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cidr::BoundCidr;
use crate::framework::{Field, FieldData, FieldType, Path};
use crate::logical::{Data, TokenIssue};
use crate::token_type::TokenType;
use crate::{Error, Result};

/// How an older name (`policies`, `period`, `ttl`, `max_ttl`) interacts
/// with its `token_*` successor, and when a read shows it. In every mode
/// the new name wins when both are given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Reads always show the older names beside the new ones, with the
    /// new values; nothing is remembered (GCP).
    Always,
    /// An older name given alone with a non-empty (non-zero) value is
    /// remembered and shown on reads; giving the new name forgets it
    /// (Kubernetes). The older name is not read when the new one is given.
    UntilRenamed,
    /// An older name given with a non-empty (non-zero) value, alone or
    /// beside the new one, is remembered and shown on reads; it stays
    /// remembered while the new name sets non-empty values and is
    /// forgotten when it sets an empty one (AppRole). The older name is
    /// always read, so an invalid value for it is refused.
    Sticky,
    /// OpenBao's `tokenutil.UpgradeValue` (userpass): an older name given
    /// alone sets the value and is remembered when non-empty (non-zero);
    /// the new name given alone forgets it; both given, the new value wins
    /// and the older name is remembered when that value is non-empty.
    Upgrade,
}

/// Which older names an auth method accepts for its token parameters and
/// how they interact with the new ones: the method's dialect of OpenBao's
/// `tokenutil`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Legacy {
    /// Whether `ttl` and `max_ttl` are accepted (`policies` always is).
    pub ttl_names: bool,
    /// Whether `period` is accepted.
    pub period_name: bool,
    /// Whether `bound_cidrs` (the older `token_bound_cidrs`) is accepted.
    pub cidrs_name: bool,
    /// How the older names interact with the new ones.
    pub echo: Echo,
    /// The error [`TokenParams::apply`] refuses a `token_ttl` above a
    /// non-zero `token_max_ttl` with; `None` when the method checks that
    /// itself, later.
    pub ttl_above_max: Option<&'static str>,
}

impl Legacy {
    /// AppRole: `policies` and `period`, remembered while in use.
    pub const APPROLE: Legacy = Legacy {
        ttl_names: false,
        period_name: true,
        cidrs_name: false,
        echo: Echo::Sticky,
        ttl_above_max: Some("'token_ttl' cannot be greater than 'token_max_ttl'"),
    };
    /// Kubernetes: the four older names, remembered until renamed.
    pub const KUBERNETES: Legacy = Legacy {
        ttl_names: true,
        period_name: true,
        cidrs_name: false,
        echo: Echo::UntilRenamed,
        ttl_above_max: Some("token ttl should not be greater than token max ttl"),
    };
    /// GCP: the four older names, always shown; the TTL order is checked
    /// with the rest of the role.
    pub const GCP: Legacy = Legacy {
        ttl_names: true,
        period_name: true,
        cidrs_name: false,
        echo: Echo::Always,
        ttl_above_max: None,
    };
    /// Userpass: `policies`, `ttl`, `max_ttl` and `bound_cidrs` (no
    /// `period`), upgraded as OpenBao's `tokenutil.UpgradeValue` does.
    pub const USERPASS: Legacy = Legacy {
        ttl_names: true,
        period_name: false,
        cidrs_name: true,
        echo: Echo::Upgrade,
        ttl_above_max: Some("'token_ttl' cannot be greater than 'token_max_ttl'"),
    };

    /// The role fields of the token parameters under this dialect:
    /// [`token_fields`](super::token_fields) (without `period` where not
    /// accepted), plus `ttl`, `max_ttl` and `bound_cidrs` where accepted.
    pub fn fields(self) -> Vec<Field> {
        let mut f = token_fields();
        if !self.period_name {
            f.retain(|field| field.name != "period");
        }
        if self.cidrs_name {
            f.push(Field::new("bound_cidrs", FieldType::CommaStringSlice, "Use \"token_bound_cidrs\" instead. If this and \"token_bound_cidrs\" are both specified, only \"token_bound_cidrs\" will be used."));
        }
        if self.ttl_names {
            f.push(Field::new("ttl", FieldType::DurationSecond, "Use \"token_ttl\" instead. If this and \"token_ttl\" are both specified, only \"token_ttl\" will be used."));
            f.push(Field::new("max_ttl", FieldType::DurationSecond, "Use \"token_max_ttl\" instead. If this and \"token_max_ttl\" are both specified, only \"token_max_ttl\" will be used."));
        }
        f
    }

    /// Declares on `path` (whose fields include [`fields`](Self::fields))
    /// the structs [`TokenParams::apply`] decodes under this dialect (see
    /// [`Path::decodes`]).
    pub fn decodes<S>(self, path: Path<S>) -> Path<S> {
        let path = path
            .decodes::<BoundCidrsParam>()
            .decodes::<ExplicitMaxTtlParam>()
            .decodes::<NumUsesParam>()
            .decodes::<TypeParam>()
            .decodes::<FlagsParam>()
            .decodes::<TtlParam>()
            .decodes::<MaxTtlParam>()
            .decodes::<PeriodParam>()
            .decodes::<PoliciesParam>()
            .decodes::<OldPoliciesParam>();
        let path = if self.period_name {
            path.decodes::<OldPeriodParam>()
        } else {
            path
        };
        let path = if self.cidrs_name {
            path.decodes::<OldBoundCidrsParam>()
        } else {
            path
        };
        if self.ttl_names {
            path.decodes::<OldTtlParam>().decodes::<OldMaxTtlParam>()
        } else {
            path
        }
    }

    /// Whether the method remembers (and stores) which older names are in
    /// use.
    fn remembers(self) -> bool {
        self.echo != Echo::Always
    }
}

/// The token parameters of a role, stored flattened into the role's
/// record (`#[serde(flatten)]`) under the names the methods always used.
/// Durations are whole seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenParams {
    /// Issued tokens' TTL (0: the mount's default).
    pub token_ttl: u64,
    /// Issued tokens' max TTL (0: the mount's).
    pub token_max_ttl: u64,
    /// Issued tokens' policies.
    pub token_policies: Vec<String>,
    /// Issued tokens' CIDR blocks (`None`: never set; AppRole's
    /// per-property read shows it as null).
    pub token_bound_cidrs: Option<Vec<String>>,
    /// Issued tokens' explicit max TTL (0: none).
    pub token_explicit_max_ttl: u64,
    /// Leave `default` out of the issued tokens' policies.
    pub token_no_default_policy: bool,
    /// Issued tokens' use limit (0: unlimited).
    pub token_num_uses: u64,
    /// Issued tokens' period (0: not periodic).
    pub token_period: u64,
    /// `service`, `batch` or `default`.
    pub token_type: TokenType,
    /// Bind issued tokens to the address that logged in.
    pub token_strictly_bind_ip: bool,
    /// The older `policies` is in use (reads show it); `None` where the
    /// method does not remember it, and then not stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_policies: Option<bool>,
    /// The older `ttl` is in use; `None` as for `legacy_policies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_ttl: Option<bool>,
    /// The older `max_ttl` is in use; `None` as for `legacy_policies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_max_ttl: Option<bool>,
    /// The older `period` is in use; `None` as for `legacy_policies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_period: Option<bool>,
    /// The older `bound_cidrs` is in use; `None` as for
    /// `legacy_policies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legacy_bound_cidrs: Option<bool>,
}

impl Default for TokenParams {
    fn default() -> Self {
        TokenParams {
            token_ttl: 0,
            token_max_ttl: 0,
            token_policies: Vec::new(),
            token_bound_cidrs: None,
            token_explicit_max_ttl: 0,
            token_no_default_policy: false,
            token_num_uses: 0,
            token_period: 0,
            token_type: TokenType::Default,
            token_strictly_bind_ip: false,
            legacy_policies: None,
            legacy_ttl: None,
            legacy_max_ttl: None,
            legacy_period: None,
            legacy_bound_cidrs: None,
        }
    }
}

/// Parses CIDR blocks as the token store will bind them, and returns them
/// as OpenBao shows them (a single host without its `/32`). The error is
/// the parser's message.
pub fn parse_bound_cidrs(cidrs: &[String]) -> std::result::Result<Vec<String>, String> {
    cidrs
        .iter()
        .map(|c| BoundCidr::parse(c).map(|b| b.to_string()))
        .collect()
}

/// Declares a struct decoding one optional token parameter.
macro_rules! param {
    ($(#[$doc:meta])* $name:ident { $field:ident: $ty:ty }) => {
        $(#[$doc])*
        #[derive(Deserialize)]
        struct $name {
            $field: Option<$ty>,
        }
    };
}

param!(/// `token_bound_cidrs` (parsed before the next are read).
    BoundCidrsParam { token_bound_cidrs: Vec<String> });
param!(/// The older `bound_cidrs`.
    OldBoundCidrsParam { bound_cidrs: Vec<String> });
param!(/// `token_explicit_max_ttl`, in seconds.
    ExplicitMaxTtlParam { token_explicit_max_ttl: u64 });
param!(/// `token_num_uses` (checked before the next are read).
    NumUsesParam { token_num_uses: i64 });
param!(/// `token_type` (checked before the next are read).
    TypeParam { token_type: String });
param!(/// `token_ttl`, in seconds.
    TtlParam { token_ttl: u64 });
param!(/// The older `ttl`, in seconds.
    OldTtlParam { ttl: u64 });
param!(/// `token_max_ttl`, in seconds.
    MaxTtlParam { token_max_ttl: u64 });
param!(/// The older `max_ttl`, in seconds.
    OldMaxTtlParam { max_ttl: u64 });
param!(/// `token_period`, in seconds.
    PeriodParam { token_period: u64 });
param!(/// The older `period`, in seconds.
    OldPeriodParam { period: u64 });
param!(/// `token_policies`.
    PoliciesParam { token_policies: Vec<String> });
param!(/// The older `policies`.
    OldPoliciesParam { policies: Vec<String> });

/// The boolean token parameters.
#[derive(Deserialize)]
struct FlagsParam {
    token_no_default_policy: Option<bool>,
    token_strictly_bind_ip: Option<bool>,
}

/// A reader of one decoded parameter.
type Reader<'a, T> = &'a dyn Fn() -> Result<Option<T>>;

/// Reads `new` (and `old`, when the method accepts an older name),
/// updates the flag remembering the older name as the dialect `echo`
/// says, and returns the value to apply.
fn renamed<T>(
    echo: Echo,
    new: Reader<'_, T>,
    old: Option<Reader<'_, T>>,
    flag: &mut Option<bool>,
    in_use: fn(&T) -> bool,
) -> Result<Option<T>> {
    let Some(old) = old else {
        return new();
    };
    match echo {
        Echo::Always => match new()? {
            Some(v) => Ok(Some(v)),
            None => old(),
        },
        Echo::UntilRenamed => {
            if let Some(v) = new()? {
                *flag = Some(false);
                return Ok(Some(v));
            }
            let v = old()?;
            if let Some(v) = &v {
                *flag = Some(in_use(v));
            }
            Ok(v)
        }
        Echo::Upgrade => match new()? {
            Some(v) => {
                let both = old()?.is_some();
                *flag = Some(both && in_use(&v));
                Ok(Some(v))
            }
            None => {
                let v = old()?;
                if let Some(v) = &v {
                    *flag = Some(in_use(v));
                }
                Ok(v)
            }
        },
        Echo::Sticky => {
            let old_v = old()?;
            match new()? {
                Some(v) => {
                    let remembered = *flag == Some(true) || old_v.as_ref().is_some_and(in_use);
                    *flag = Some(remembered && in_use(&v));
                    Ok(Some(v))
                }
                None => {
                    if let Some(o) = &old_v {
                        *flag = Some(in_use(o));
                    }
                    Ok(old_v)
                }
            }
        }
    }
}

impl TokenParams {
    /// The parameters of a new role of a method with this dialect: the
    /// defaults, with the older names it remembers marked unused.
    pub fn new(legacy: Legacy) -> Self {
        let mut p = TokenParams::default();
        p.remember(legacy);
        p
    }

    /// Marks the older names `legacy` remembers as known (unused unless
    /// already in use), so that they are stored.
    fn remember(&mut self, legacy: Legacy) {
        if !legacy.remembers() {
            return;
        }
        self.legacy_policies.get_or_insert(false);
        if legacy.period_name {
            self.legacy_period.get_or_insert(false);
        }
        if legacy.cidrs_name {
            self.legacy_bound_cidrs.get_or_insert(false);
        }
        if legacy.ttl_names {
            for flag in [&mut self.legacy_ttl, &mut self.legacy_max_ttl] {
                flag.get_or_insert(false);
            }
        }
    }

    /// The token CIDR blocks (empty when unset).
    pub fn bound_cidrs(&self) -> &[String] {
        self.token_bound_cidrs.as_deref().unwrap_or(&[])
    }

    /// Applies the token parameters a role write gives (and the older
    /// names `legacy` accepts), with OpenBao's checks: CIDR blocks, a
    /// non-negative use limit, the token type, the TTL order (where
    /// `legacy` says), and the batch rules. Returns OpenBao's warnings.
    /// On error `self` may be partly updated: apply to a copy that is
    /// stored only on success.
    pub fn apply(&mut self, f: &FieldData, legacy: Legacy) -> Result<Vec<String>> {
        self.remember(legacy);
        let mut warnings = Vec::new();
        let cidrs = || Ok(f.decode::<BoundCidrsParam>()?.token_bound_cidrs);
        let old_cidrs = || Ok(f.decode::<OldBoundCidrsParam>()?.bound_cidrs);
        let old: Option<Reader<'_, Vec<String>>> = legacy.cidrs_name.then_some(&old_cidrs);
        let non_empty: fn(&Vec<String>) -> bool = |c| !c.is_empty();
        if let Some(c) = renamed(
            legacy.echo,
            &cidrs,
            old,
            &mut self.legacy_bound_cidrs,
            non_empty,
        )? {
            self.token_bound_cidrs = Some(parse_bound_cidrs(&c).map_err(Error::BadRequest)?);
        }
        if let Some(secs) = f.decode::<ExplicitMaxTtlParam>()?.token_explicit_max_ttl {
            self.token_explicit_max_ttl = secs;
        }
        if let Some(n) = f.decode::<NumUsesParam>()?.token_num_uses {
            self.token_num_uses = u64::try_from(n)
                .map_err(|_| Error::bad_request("'token_num_uses' cannot be negative"))?;
        }
        if let Some(t) = f.decode::<TypeParam>()?.token_type {
            let parsed = match t.as_str() {
                "" => Some(TokenType::Default),
                other => TokenType::parse(other),
            };
            self.token_type = match parsed {
                Some(TokenType::DefaultService) => {
                    warnings.push(format!("{t} has no useful meaning; adjusting to service"));
                    TokenType::Service
                }
                Some(TokenType::DefaultBatch) => {
                    warnings.push(format!("{t} has no useful meaning; adjusting to batch"));
                    TokenType::Batch
                }
                Some(plain) => plain,
                None => {
                    return Err(Error::bad_request(format!(
                        "invalid 'token_type' value {t:?}"
                    )))
                }
            };
        }
        let flags: FlagsParam = f.decode()?;
        if let Some(b) = flags.token_no_default_policy {
            self.token_no_default_policy = b;
        }
        if let Some(b) = flags.token_strictly_bind_ip {
            self.token_strictly_bind_ip = b;
        }
        let echo = legacy.echo;
        let nonzero: fn(&u64) -> bool = |secs| *secs != 0;
        let ttl = || Ok(f.decode::<TtlParam>()?.token_ttl);
        let old_ttl = || Ok(f.decode::<OldTtlParam>()?.ttl);
        let old: Option<Reader<'_, u64>> = legacy.ttl_names.then_some(&old_ttl);
        if let Some(secs) = renamed(echo, &ttl, old, &mut self.legacy_ttl, nonzero)? {
            self.token_ttl = secs;
        }
        let max_ttl = || Ok(f.decode::<MaxTtlParam>()?.token_max_ttl);
        let old_max_ttl = || Ok(f.decode::<OldMaxTtlParam>()?.max_ttl);
        let old: Option<Reader<'_, u64>> = legacy.ttl_names.then_some(&old_max_ttl);
        if let Some(secs) = renamed(echo, &max_ttl, old, &mut self.legacy_max_ttl, nonzero)? {
            self.token_max_ttl = secs;
        }
        let period = || Ok(f.decode::<PeriodParam>()?.token_period);
        let old_period = || Ok(f.decode::<OldPeriodParam>()?.period);
        let old: Option<Reader<'_, u64>> = legacy.period_name.then_some(&old_period);
        if let Some(secs) = renamed(echo, &period, old, &mut self.legacy_period, nonzero)? {
            self.token_period = secs;
        }
        let policies = || Ok(f.decode::<PoliciesParam>()?.token_policies);
        let old_policies = || Ok(f.decode::<OldPoliciesParam>()?.policies);
        if let Some(p) = renamed(
            echo,
            &policies,
            Some(&old_policies),
            &mut self.legacy_policies,
            |p: &Vec<String>| !p.is_empty(),
        )? {
            self.token_policies = p;
        }
        if let Some(msg) = legacy.ttl_above_max {
            if self.token_max_ttl > 0 && self.token_ttl > self.token_max_ttl {
                return Err(Error::bad_request(msg));
            }
        }
        self.check_batch_rules()?;
        Ok(warnings)
    }

    /// OpenBao's rule that batch tokens have neither a period nor a use
    /// limit.
    pub fn check_batch_rules(&self) -> Result<()> {
        if self.token_type.is_batch() {
            if self.token_period > 0 {
                return Err(Error::bad_request(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate periodic tokens",
                ));
            }
            if self.token_num_uses > 0 {
                return Err(Error::bad_request(
                    "'token_type' cannot be 'batch' or 'default_batch' when set to generate tokens with limited use count",
                ));
            }
        }
        Ok(())
    }

    /// Writes the parameters into a role read's data `d` under their
    /// `token_*` names, plus the older names `legacy` shows, then sorts
    /// `d`'s keys (OpenBao's JSON objects are sorted).
    pub fn render(&self, d: &mut Data, legacy: Legacy) {
        d.insert(
            "token_bound_cidrs".into(),
            self.bound_cidrs().to_vec().into(),
        );
        d.insert(
            "token_explicit_max_ttl".into(),
            self.token_explicit_max_ttl.into(),
        );
        d.insert("token_max_ttl".into(), self.token_max_ttl.into());
        d.insert(
            "token_no_default_policy".into(),
            self.token_no_default_policy.into(),
        );
        d.insert("token_num_uses".into(), self.token_num_uses.into());
        d.insert("token_period".into(), self.token_period.into());
        d.insert("token_policies".into(), self.token_policies.clone().into());
        d.insert(
            "token_strictly_bind_ip".into(),
            self.token_strictly_bind_ip.into(),
        );
        d.insert("token_ttl".into(), self.token_ttl.into());
        d.insert("token_type".into(), self.token_type.into());
        let always = legacy.echo == Echo::Always;
        let shown = |flag: Option<bool>| always || flag == Some(true);
        if legacy.ttl_names {
            if shown(self.legacy_ttl) {
                d.insert("ttl".into(), self.token_ttl.into());
            }
            if shown(self.legacy_max_ttl) {
                d.insert("max_ttl".into(), self.token_max_ttl.into());
            }
        }
        if shown(self.legacy_policies) {
            d.insert("policies".into(), self.token_policies.clone().into());
        }
        if legacy.cidrs_name && shown(self.legacy_bound_cidrs) {
            d.insert("bound_cidrs".into(), self.bound_cidrs().to_vec().into());
        }
        if legacy.period_name && shown(self.legacy_period) && (always || self.token_period > 0) {
            d.insert("period".into(), self.token_period.into());
        }
        d.sort_keys();
    }

    /// The token a login with these parameters asks for (the method sets
    /// its alias on the result).
    pub fn issue(
        &self,
        metadata: Map<String, Value>,
        display_name: impl Into<String>,
    ) -> TokenIssue {
        TokenIssue {
            policies: self.token_policies.clone(),
            metadata,
            display_name: display_name.into(),
            ttl: Duration::from_secs(self.token_ttl),
            max_ttl: Duration::from_secs(self.token_max_ttl),
            explicit_max_ttl: Duration::from_secs(self.token_explicit_max_ttl),
            period: Duration::from_secs(self.token_period),
            num_uses: self.token_num_uses,
            bound_cidrs: self.bound_cidrs().to_vec(),
            token_type: self.token_type,
            no_default_policy: self.token_no_default_policy,
            strictly_bind_ip: self.token_strictly_bind_ip,
            alias: None,
        }
    }
}

/// The common token parameters of auth method roles (OpenBao's
/// `tokenutil`), with the older `policies` and `period` names; methods add
/// their own older names.
pub fn token_fields() -> Vec<Field> {
    vec![
        Field::new("token_ttl", FieldType::DurationSecond, "The initial ttl of the token to generate."),
        Field::new("token_max_ttl", FieldType::DurationSecond, "The maximum lifetime of the generated token."),
        Field::new("token_policies", FieldType::CommaStringSlice, "Comma-separated list of policies."),
        Field::new("token_bound_cidrs", FieldType::CommaStringSlice, "Comma separated string or JSON list of CIDR blocks. If set, specifies the blocks of IP addresses which are allowed to use the generated token."),
        Field::new("token_explicit_max_ttl", FieldType::DurationSecond, "If set, tokens created via this role carry an explicit maximum TTL."),
        Field::new("token_no_default_policy", FieldType::Bool, "If true, the 'default' policy will not automatically be added to generated tokens."),
        Field::new("token_num_uses", FieldType::Int, "The maximum number of times a token may be used, a value of zero means unlimited."),
        Field::new("token_period", FieldType::DurationSecond, "If set, tokens created via this role will have no max lifetime; instead, their renewal period will be fixed to this value."),
        Field::new("token_type", FieldType::String, "The type of token to generate, service or batch."),
        Field::new("token_strictly_bind_ip", FieldType::Bool, "Bind issued tokens to the address that logged in."),
        Field::new("policies", FieldType::CommaStringSlice, "Use \"token_policies\" instead. If this and \"token_policies\" are both specified, only \"token_policies\" will be used."),
        Field::new("period", FieldType::DurationSecond, "Use \"token_period\" instead. If this and \"token_period\" are both specified, only \"token_period\" will be used."),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Arc;

    fn fields(legacy: Legacy, v: Value) -> FieldData {
        let Value::Object(m) = v else {
            panic!("test data must be an object")
        };
        FieldData::new(m, HashMap::new(), Arc::from(legacy.fields()))
    }

    #[test]
    fn each_dialect_declares_what_apply_decodes() {
        for l in [
            Legacy::APPROLE,
            Legacy::KUBERNETES,
            Legacy::GCP,
            Legacy::USERPASS,
        ] {
            let path = l.decodes(Path::<()>::new("role/{name}").fields(l.fields()));
            assert_eq!(path.decode_problems(), Vec::<String>::new(), "{l:?}");
        }
        // GCP's older TTL names need their fields.
        let path = Legacy::GCP.decodes(Path::<()>::new("role").fields(token_fields()));
        assert_eq!(path.decode_problems().len(), 2);
    }

    /// Applies `v` to `p` and returns what a read shows.
    fn write(p: &mut TokenParams, legacy: Legacy, v: Value) -> Data {
        p.apply(&fields(legacy, v), legacy).unwrap();
        let mut d = Data::new();
        p.render(&mut d, legacy);
        d
    }

    #[test]
    fn approle_remembers_older_names_while_the_new_ones_are_non_empty() {
        let l = Legacy::APPROLE;
        let mut p = TokenParams::new(l);
        let d = write(&mut p, l, json!({"policies": "a,b", "period": "1m"}));
        assert_eq!(d["policies"], json!(["a", "b"]));
        assert_eq!(d["token_policies"], json!(["a", "b"]));
        assert_eq!(d["period"], 60);
        assert_eq!(d["token_period"], 60);
        let d = write(
            &mut p,
            l,
            json!({"token_policies": "c", "token_period": 30}),
        );
        assert_eq!(d["policies"], json!(["c"]));
        assert_eq!(d["period"], 30);
        let d = write(&mut p, l, json!({"token_policies": "", "token_period": 0}));
        assert!(!d.contains_key("policies") && !d.contains_key("period"));
        // Both names: the new value wins and the older name is shown.
        let d = write(
            &mut p,
            l,
            json!({"policies": "old", "token_policies": "new"}),
        );
        assert_eq!(d["policies"], json!(["new"]));
        // AppRole reads the older name even beside the new one.
        let err = p
            .apply(
                &fields(l, json!({"policies": {"a": "b"}, "token_policies": "x"})),
                l,
            )
            .unwrap_err();
        assert_eq!(err.status(), 400);
        // `ttl` is not an AppRole name: never read, never shown.
        let d = write(&mut p, l, json!({"token_ttl": 5}));
        assert!(!d.contains_key("ttl") && !d.contains_key("max_ttl"));
    }

    #[test]
    fn kubernetes_forgets_an_older_name_once_the_new_one_is_given() {
        let l = Legacy::KUBERNETES;
        let mut p = TokenParams::new(l);
        let d = write(
            &mut p,
            l,
            json!({"ttl": "1h", "max_ttl": "2h", "policies": "a"}),
        );
        assert_eq!(d["ttl"], 3600);
        assert_eq!(d["token_ttl"], 3600);
        assert_eq!(d["max_ttl"], 7200);
        assert_eq!(d["policies"], json!(["a"]));
        let d = write(
            &mut p,
            l,
            json!({"token_ttl": 60, "ttl": 10, "token_policies": "b"}),
        );
        assert_eq!(d["token_ttl"], 60);
        assert!(!d.contains_key("ttl") && !d.contains_key("policies"));
        assert_eq!(d["max_ttl"], 7200);
        // A zero older value is applied but not remembered.
        let d = write(&mut p, l, json!({"max_ttl": 0}));
        assert_eq!(d["token_max_ttl"], 0);
        assert!(!d.contains_key("max_ttl"));
        // The older name is not read when the new one is given.
        write(&mut p, l, json!({"token_period": 5, "period": "nonsense"}));
        assert_eq!(p.token_period, 5);
    }

    #[test]
    fn userpass_upgrades_older_names_as_openbao_does() {
        let l = Legacy::USERPASS;
        let mut p = TokenParams::new(l);
        let d = write(
            &mut p,
            l,
            json!({"policies": "a", "ttl": "1h", "bound_cidrs": "127.0.0.1/32"}),
        );
        assert_eq!(d["policies"], json!(["a"]));
        assert_eq!(d["ttl"], 3600);
        assert_eq!(d["bound_cidrs"], json!(["127.0.0.1"]));
        assert_eq!(d["token_bound_cidrs"], json!(["127.0.0.1"]));
        // Both names: the new value wins and the older name stays shown.
        let d = write(&mut p, l, json!({"max_ttl": "2h", "token_max_ttl": "3h"}));
        assert_eq!(d["max_ttl"], 10800);
        assert_eq!(d["token_max_ttl"], 10800);
        // The new name alone forgets the older one.
        let d = write(
            &mut p,
            l,
            json!({"token_policies": "b", "token_ttl": 5, "token_bound_cidrs": "10.0.0.0/8"}),
        );
        for old in ["policies", "ttl", "bound_cidrs"] {
            assert!(!d.contains_key(old), "{old}");
        }
        assert_eq!(d["max_ttl"], 10800);
        // `period` is not a userpass name: ignored, never shown.
        let d = write(&mut p, l, json!({"period": 30}));
        assert_eq!(d["token_period"], 0);
        assert!(!d.contains_key("period"));
        assert!(!l.fields().iter().any(|f| f.name == "period"));
    }

    #[test]
    fn gcp_always_shows_the_older_names_and_stores_no_flags() {
        let l = Legacy::GCP;
        let mut p = TokenParams::new(l);
        let d = write(
            &mut p,
            l,
            json!({"ttl": 60, "token_max_ttl": 120, "max_ttl": 1}),
        );
        for (old, new, v) in [
            ("ttl", "token_ttl", json!(60)),
            ("max_ttl", "token_max_ttl", json!(120)),
            ("period", "token_period", json!(0)),
            ("policies", "token_policies", json!([])),
        ] {
            assert_eq!(d[old], v, "{old}");
            assert_eq!(d[new], v, "{new}");
        }
        let stored = serde_json::to_value(&p).unwrap();
        assert!(stored.get("legacy_ttl").is_none() && stored.get("legacy_policies").is_none());
    }

    #[test]
    fn render_shows_every_token_field_in_sorted_order() {
        let mut d = Data::new();
        d.insert("zz".into(), json!(1));
        d.insert("aa".into(), json!(1));
        TokenParams::new(Legacy::GCP).render(&mut d, Legacy::GCP);
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert_eq!(d["token_type"], "default");
        assert_eq!(d["token_bound_cidrs"], json!([]));
        assert_eq!(keys.iter().filter(|k| k.starts_with("token_")).count(), 10);
    }

    #[test]
    fn checks_refuse_bad_values_with_openbaos_messages() {
        let bad = |l: Legacy, v: Value| {
            TokenParams::new(l)
                .apply(&fields(l, v), l)
                .unwrap_err()
                .to_string()
        };
        let all = [Legacy::APPROLE, Legacy::KUBERNETES, Legacy::GCP];
        for l in all {
            assert_eq!(
                bad(l, json!({"token_num_uses": -1})),
                "'token_num_uses' cannot be negative"
            );
            assert_eq!(
                bad(l, json!({"token_type": "weird"})),
                "invalid 'token_type' value \"weird\""
            );
            assert!(bad(l, json!({"token_type": "batch", "token_period": 5})).contains("periodic"));
            assert!(
                bad(l, json!({"token_type": "batch", "token_num_uses": 1})).contains("use count")
            );
            assert!(!bad(l, json!({"token_bound_cidrs": "nonsense"})).is_empty());
        }
        let over = json!({"token_ttl": 20, "token_max_ttl": 10});
        assert_eq!(
            bad(Legacy::APPROLE, over.clone()),
            "'token_ttl' cannot be greater than 'token_max_ttl'"
        );
        assert_eq!(
            bad(Legacy::KUBERNETES, over.clone()),
            "token ttl should not be greater than token max ttl"
        );
        // GCP checks the order with the rest of the role.
        let l = Legacy::GCP;
        assert!(TokenParams::new(l).apply(&fields(l, over), l).is_ok());
    }

    #[test]
    fn token_type_and_cidrs_are_normalised() {
        let l = Legacy::KUBERNETES;
        let mut p = TokenParams::new(l);
        let warnings = p
            .apply(
                &fields(l, json!({"token_type": "default-batch", "token_bound_cidrs": "10.0.0.1/32,10.0.0.0/8"})),
                l,
            )
            .unwrap();
        assert_eq!(p.token_type, TokenType::Batch);
        assert_eq!(
            warnings,
            vec!["default-batch has no useful meaning; adjusting to batch"]
        );
        assert_eq!(p.bound_cidrs(), ["10.0.0.1", "10.0.0.0/8"]);
        p.apply(&fields(l, json!({"token_type": ""})), l).unwrap();
        assert_eq!(p.token_type, TokenType::Default);
    }

    #[test]
    fn stored_flags_follow_the_dialect() {
        let keys = |l: Legacy| {
            let Value::Object(m) = serde_json::to_value(TokenParams::new(l)).unwrap() else {
                panic!("params serialise as an object")
            };
            m.keys()
                .filter(|k| k.starts_with("legacy_"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(Legacy::APPROLE), ["legacy_policies", "legacy_period"]);
        assert_eq!(
            keys(Legacy::KUBERNETES),
            [
                "legacy_policies",
                "legacy_ttl",
                "legacy_max_ttl",
                "legacy_period"
            ]
        );
        assert!(keys(Legacy::GCP).is_empty());
        // A record without flags gets them on its next write.
        let mut p: TokenParams = serde_json::from_value(json!({"token_ttl": 5})).unwrap();
        assert_eq!(p.token_type, TokenType::Default);
        assert_eq!(p.legacy_policies, None);
        p.apply(&fields(Legacy::APPROLE, json!({})), Legacy::APPROLE)
            .unwrap();
        assert_eq!(p.legacy_policies, Some(false));
        assert_eq!(p.legacy_ttl, None);
    }

    #[test]
    fn issue_carries_every_parameter() {
        let p = TokenParams {
            token_ttl: 1,
            token_max_ttl: 2,
            token_policies: vec!["p".into()],
            token_bound_cidrs: Some(vec!["10.0.0.0/8".into()]),
            token_explicit_max_ttl: 3,
            token_no_default_policy: true,
            token_num_uses: 4,
            token_period: 5,
            token_type: TokenType::Service,
            token_strictly_bind_ip: true,
            ..TokenParams::default()
        };
        let mut meta = Map::new();
        meta.insert("role".into(), json!("r"));
        let i = p.issue(meta.clone(), "ns-sa");
        assert_eq!(i.policies, ["p"]);
        assert_eq!(i.metadata, meta);
        assert_eq!(i.display_name, "ns-sa");
        assert_eq!(
            (i.ttl, i.max_ttl, i.explicit_max_ttl, i.period),
            (
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(3),
                Duration::from_secs(5)
            )
        );
        assert_eq!(i.num_uses, 4);
        assert_eq!(i.bound_cidrs, ["10.0.0.0/8"]);
        assert_eq!(i.token_type, TokenType::Service);
        assert!(i.no_default_policy && i.strictly_bind_ip);
    }
}
