//! Identity templates: OpenBao's `identitytpl` grammar, parsed once and
//! rendered against an entity's [`IdentityFacts`].
//!
//! A string is split at `{{`; each later piece must hold exactly one `}}`
//! (and the text before the first `{{` none), else the template is
//! unbalanced. The text between the braces, trimmed, is a directive:
//!
//! - `identity.entity.id`, `.name`, `.metadata`, `.metadata.<key>`,
//!   `.groups.names`, `.groups.ids`;
//! - `identity.entity.aliases.<mount accessor>.id`, `.name`, `.metadata`,
//!   `.metadata.<key>`, `.custom_metadata`, `.custom_metadata.<key>`;
//! - `identity.groups.ids.<id>.id|name|metadata.<key>` and
//!   `identity.groups.names.<name>.id|name|metadata.<key>`;
//! - `time.now`, `time.now.plus.<duration>`, `time.now.minus.<duration>`
//!   (Unix seconds).
//!
//! The module owns the parsed form ([`Template`]), the two rendering modes
//! ([`Mode::Acl`] for policy paths: plain strings, and a missing or empty
//! value, a list or a whole map does not resolve; [`Mode::Json`] for OIDC
//! token templates: values JSON-encoded, a missing key or alias renders
//! empty), and the rendering errors. Directives are checked only when
//! rendered, as OpenBao does: a policy may name a selector that never
//! resolves, and its rule then matches nothing.
//!
//! Groups carry no namespace in [`IdentityFacts`]: the store hands over the
//! groups of the namespace being served, so `groups.names` is not filtered
//! again here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use strongroom_sdk::identity::{AliasFacts, GroupFacts, IdentityFacts};

/// Why a template string was refused when parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A `{{` without its `}}`, or the reverse.
    #[error("unbalanced templating characters")]
    Unbalanced,
}

/// Why a template did not render (the rule or claim it feeds is dropped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// An entity directive, and no entity.
    #[error("string contains entity template directives but no entity was provided")]
    NoEntity,
    /// A group directive, and the entity has no group.
    #[error("string contains groups template directives but no groups were provided")]
    NoGroups,
    /// The directive names nothing the identity has.
    #[error("no value could be found for one of the template directives")]
    NotFound,
    /// `aliases.<accessor>` without a field.
    #[error("invalid alias selector")]
    InvalidAliasSelector,
    /// No alias of the entity belongs to that mount accessor (ACL mode).
    #[error("alias not found")]
    AliasNotFound,
    /// `identity.groups.` not followed by `ids.` or `names.`.
    #[error("invalid groups selector")]
    InvalidGroupsSelector,
    /// `identity.groups.ids.<id>` without a field.
    #[error("invalid groups accessor")]
    InvalidGroupsAccessor,
    /// The entity is not in that group.
    #[error("entity is not a member of group {0:?}")]
    NotMember(String),
    /// `time.` not followed by `now`.
    #[error("invalid time selector {0:?}")]
    InvalidTimeSelector(String),
    /// `time.now.plus` without a duration.
    #[error("missing time operand")]
    MissingTimeOperand,
    /// `time.now.plus.<x>` where `x` is not a duration.
    #[error("invalid duration: {0}")]
    InvalidDuration(String),
    /// `time.now.<op>.<d>` where `op` is not `plus` or `minus`.
    #[error("invalid time operator {0:?}")]
    InvalidTimeOperator(String),
    /// A substituted value holds a character the caller forbids (`/`, `*`
    /// or `+` in policy paths, unless the policy allows them).
    #[error("template substitution contains forbidden value {0:?}")]
    Forbidden(String),
}

/// How values are written into the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Policy paths: strings verbatim; empty values, lists and whole maps
    /// do not resolve; an unknown alias accessor does not resolve.
    Acl,
    /// OIDC token templates: strings quoted, lists and maps as JSON; an
    /// unknown alias accessor renders as an empty alias.
    Json,
}

/// Which field of an alias a directive reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AliasField {
    Id,
    Name,
    Metadata(Option<String>),
    CustomMetadata(Option<String>),
    Unknown,
}

/// Which field of a group a directive reads.
#[derive(Debug, Clone, PartialEq, Eq)]
enum GroupField {
    Id,
    Name,
    Metadata(String),
    Unknown,
}

/// A directive, resolved to what it reads when parsed so that rendering
/// does no string matching.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Directive {
    EntityId,
    EntityName,
    EntityMetadata(Option<String>),
    GroupNames,
    GroupIds,
    Alias {
        accessor: String,
        field: AliasField,
    },
    /// `identity.entity.aliases.<x>` with no field.
    BadAlias,
    /// Any other `identity.entity.` directive.
    EntityUnknown,
    Group {
        by_id: bool,
        key: String,
        field: GroupField,
    },
    /// A groups directive that fails once groups exist.
    BadGroups(RenderError),
    Time(TimeOp),
    /// A time directive that always fails.
    BadTime(RenderError),
    /// Anything else: never resolves.
    Unknown,
}

/// `time.now`, plus or minus seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeOp {
    Now,
    Plus(i64),
    Minus(i64),
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Directive(Directive),
}

/// A parsed template string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    time: bool,
}

/// What a rendering reads besides the identity.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    /// The entity, if the caller has one.
    pub identity: Option<&'a IdentityFacts>,
    /// The processing mode.
    pub mode: Mode,
    /// Substrings no substituted value may contain.
    pub blocked: &'a [&'a str],
    /// The current time in Unix seconds (for `time.now`).
    pub now: i64,
}

/// The substrings OpenBao forbids in values substituted into policy paths
/// by default: a `/` would reach other path segments, `*` and `+` would
/// become wildcards.
pub const ACL_BLOCKED: [&str; 3] = ["/", "*", "+"];

impl Template {
    /// Parses `text`. `Ok(None)` when it holds no `{{` (not a template);
    /// an error when the braces are unbalanced.
    pub fn parse(text: &str) -> Result<Option<Template>, TemplateError> {
        let mut pieces = text.split("{{");
        let first = pieces.next().unwrap_or("");
        if first.contains("}}") {
            return Err(TemplateError::Unbalanced);
        }
        if !text.contains("{{") {
            return Ok(None);
        }
        let mut parts = Vec::new();
        if !first.is_empty() {
            parts.push(Part::Literal(first.to_string()));
        }
        for piece in pieces {
            let mut halves = piece.split("}}");
            let (Some(inner), Some(rest), None) = (halves.next(), halves.next(), halves.next())
            else {
                return Err(TemplateError::Unbalanced);
            };
            parts.push(Part::Directive(directive(inner.trim())));
            if !rest.is_empty() {
                parts.push(Part::Literal(rest.to_string()));
            }
        }
        let time = parts
            .iter()
            .any(|p| matches!(p, Part::Directive(Directive::Time(_))));
        Ok(Some(Template { parts, time }))
    }

    /// Whether the template reads the clock (its rendering changes with
    /// time, so it must not be cached).
    pub fn reads_time(&self) -> bool {
        self.time
    }

    /// Renders the template.
    pub fn render(&self, input: &RenderInput<'_>) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Directive(d) => {
                    let value = render_directive(d, input)?;
                    if let Some(b) = input.blocked.iter().find(|b| value.contains(**b)) {
                        return Err(RenderError::Forbidden((*b).to_string()));
                    }
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }
}

/// The text after `prefix.` when `s` starts with `prefix.`.
fn after<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.strip_prefix(prefix)?.strip_prefix('.')
}

fn directive(input: &str) -> Directive {
    if let Some(rest) = input.strip_prefix("identity.entity.") {
        return entity_directive(rest);
    }
    if let Some(rest) = input.strip_prefix("identity.groups.") {
        return groups_directive(rest);
    }
    if let Some(rest) = input.strip_prefix("time.") {
        return time_directive(rest);
    }
    Directive::Unknown
}

fn entity_directive(rest: &str) -> Directive {
    match rest {
        "id" => return Directive::EntityId,
        "name" => return Directive::EntityName,
        "metadata" => return Directive::EntityMetadata(None),
        "groups.names" => return Directive::GroupNames,
        "groups.ids" => return Directive::GroupIds,
        _ => {}
    }
    if let Some(key) = after(rest, "metadata") {
        return Directive::EntityMetadata(Some(key.to_string()));
    }
    if let Some(sel) = rest.strip_prefix("aliases.") {
        let Some((accessor, field)) = sel.split_once('.') else {
            return Directive::BadAlias;
        };
        let field = match field {
            "id" => AliasField::Id,
            "name" => AliasField::Name,
            "metadata" => AliasField::Metadata(None),
            "custom_metadata" => AliasField::CustomMetadata(None),
            f => {
                if let Some(k) = after(f, "metadata") {
                    AliasField::Metadata(Some(k.to_string()))
                } else if let Some(k) = after(f, "custom_metadata") {
                    AliasField::CustomMetadata(Some(k.to_string()))
                } else {
                    AliasField::Unknown
                }
            }
        };
        return Directive::Alias {
            accessor: accessor.to_string(),
            field,
        };
    }
    Directive::EntityUnknown
}

fn groups_directive(rest: &str) -> Directive {
    let Some((kind, sel)) = rest.split_once('.') else {
        return Directive::BadGroups(RenderError::InvalidGroupsSelector);
    };
    let by_id = match kind {
        "ids" => true,
        "names" => false,
        _ => return Directive::BadGroups(RenderError::InvalidGroupsSelector),
    };
    let Some((key, field)) = sel.split_once('.') else {
        return Directive::BadGroups(RenderError::InvalidGroupsAccessor);
    };
    let field = match field {
        "id" => GroupField::Id,
        "name" => GroupField::Name,
        f => match f.strip_prefix("metadata.") {
            Some(k) => GroupField::Metadata(k.to_string()),
            None => GroupField::Unknown,
        },
    };
    Directive::Group {
        by_id,
        key: key.to_string(),
        field,
    }
}

fn time_directive(rest: &str) -> Directive {
    let mut ops = rest.splitn(3, '.');
    let selector = ops.next().unwrap_or("");
    if selector != "now" {
        return Directive::BadTime(RenderError::InvalidTimeSelector(selector.to_string()));
    }
    match (ops.next(), ops.next()) {
        (None, _) => Directive::Time(TimeOp::Now),
        (Some(_), None) => Directive::BadTime(RenderError::MissingTimeOperand),
        (Some(op), Some(amount)) => {
            let secs = match strongroom_sdk::duration::parse_duration(amount) {
                Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                Err(e) => return Directive::BadTime(RenderError::InvalidDuration(e.to_string())),
            };
            match op {
                "plus" => Directive::Time(TimeOp::Plus(secs)),
                "minus" => Directive::Time(TimeOp::Minus(secs)),
                other => Directive::BadTime(RenderError::InvalidTimeOperator(other.to_string())),
            }
        }
    }
}

/// A string value: ACL mode refuses empty ones; JSON mode quotes.
fn string_value(mode: Mode, s: &str) -> Result<String, RenderError> {
    match mode {
        Mode::Acl if s.is_empty() => Err(RenderError::NotFound),
        Mode::Acl => Ok(s.to_string()),
        Mode::Json => Ok(json_string(s)),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A metadata value or the whole map.
fn map_value(
    mode: Mode,
    map: &BTreeMap<String, String>,
    key: Option<&str>,
) -> Result<String, RenderError> {
    match (mode, key) {
        // ACL mode returns a present key as is, even when empty.
        (Mode::Acl, Some(k)) => map.get(k).cloned().ok_or(RenderError::NotFound),
        (Mode::Acl, None) => Err(RenderError::NotFound),
        (Mode::Json, Some(k)) => Ok(json_string(map.get(k).map_or("", String::as_str))),
        (Mode::Json, None) => Ok(serde_json::to_string(map).unwrap_or_else(|_| "{}".into())),
    }
}

/// A list value: never in ACL mode; JSON `null` when empty (as OpenBao's
/// nil slice marshals).
fn list_value<'a>(mode: Mode, items: impl Iterator<Item = &'a str>) -> Result<String, RenderError> {
    match mode {
        Mode::Acl => Err(RenderError::NotFound),
        Mode::Json => {
            let items: Vec<&str> = items.collect();
            if items.is_empty() {
                return Ok("null".into());
            }
            Ok(serde_json::to_string(&items).unwrap_or_else(|_| "null".into()))
        }
    }
}

fn alias_value(mode: Mode, alias: &AliasFacts, field: &AliasField) -> Result<String, RenderError> {
    match field {
        AliasField::Id => string_value(mode, &alias.id),
        AliasField::Name => string_value(mode, &alias.name),
        AliasField::Metadata(k) => map_value(mode, &alias.metadata, k.as_deref()),
        AliasField::CustomMetadata(k) => map_value(mode, &alias.custom_metadata, k.as_deref()),
        AliasField::Unknown => Err(RenderError::NotFound),
    }
}

fn group_value(group: &GroupFacts, field: &GroupField) -> Result<String, RenderError> {
    // OpenBao writes group values verbatim in both modes.
    match field {
        GroupField::Id => Ok(group.id.clone()),
        GroupField::Name if group.name.is_empty() => Err(RenderError::NotFound),
        GroupField::Name => Ok(group.name.clone()),
        GroupField::Metadata(k) => group.metadata.get(k).cloned().ok_or(RenderError::NotFound),
        GroupField::Unknown => Err(RenderError::NotFound),
    }
}

fn render_directive(d: &Directive, input: &RenderInput<'_>) -> Result<String, RenderError> {
    let mode = input.mode;
    let entity = || input.identity.ok_or(RenderError::NoEntity);
    let groups = || match input.identity {
        Some(f) if !f.groups.is_empty() => Ok(&f.groups),
        _ => Err(RenderError::NoGroups),
    };
    match d {
        Directive::EntityId => string_value(mode, &entity()?.entity_id),
        Directive::EntityName => string_value(mode, &entity()?.entity_name),
        Directive::EntityMetadata(k) => map_value(mode, &entity()?.entity_metadata, k.as_deref()),
        Directive::GroupNames => list_value(mode, entity()?.groups.iter().map(|g| &*g.name)),
        Directive::GroupIds => list_value(mode, entity()?.groups.iter().map(|g| &*g.id)),
        Directive::Alias { accessor, field } => {
            let e = entity()?;
            match e.aliases.iter().find(|a| a.mount_accessor == *accessor) {
                Some(alias) => alias_value(mode, alias, field),
                None if mode == Mode::Acl => Err(RenderError::AliasNotFound),
                None => alias_value(mode, &AliasFacts::default(), field),
            }
        }
        Directive::BadAlias => {
            entity()?;
            Err(RenderError::InvalidAliasSelector)
        }
        Directive::EntityUnknown => {
            entity()?;
            Err(RenderError::NotFound)
        }
        Directive::Group { by_id, key, field } => {
            let found = groups()?
                .iter()
                .find(|g| if *by_id { g.id == *key } else { g.name == *key })
                .ok_or_else(|| RenderError::NotMember(key.clone()))?;
            group_value(found, field)
        }
        Directive::BadGroups(e) => {
            groups()?;
            Err(e.clone())
        }
        Directive::Time(op) => {
            let t = match op {
                TimeOp::Now => input.now,
                TimeOp::Plus(s) => input.now.saturating_add(*s),
                TimeOp::Minus(s) => input.now.saturating_sub(*s),
            };
            let mut s = String::new();
            let _ = write!(s, "{t}");
            Ok(s)
        }
        Directive::BadTime(e) => Err(e.clone()),
        Directive::Unknown => Err(RenderError::NotFound),
    }
}

#[cfg(test)]
#[path = "template_tests.rs"]
mod tests;
